import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A forward proxy on loopback as corporate networks have them: CONNECT tunnels only, optionally behind Basic auth,
 * and names of its own: `<anything>.test` is 127.0.0.1 to it, and to nobody else (the DNS only the proxy has).
 */
export interface ConnectProxy {
  url: string;
  /** Tunnels opened, by the `host:port` asked for. */
  tunnels: Map<string, number>;
  /** CONNECTs refused for want of the right Proxy-Authorization. */
  refused: number;
  close(): Promise<void>;
}

export async function startConnectProxy(credentials?: { user: string; password: string }): Promise<ConnectProxy> {
  const sockets = new Set<Socket>();
  const proxy: ConnectProxy = { url: '', tunnels: new Map(), refused: 0, close: () => Promise.resolve() };
  const expected = credentials ? `Basic ${Buffer.from(`${credentials.user}:${credentials.password}`).toString('base64')}` : undefined;
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      client.off('data', onData);
      const [requestLine, ...headerLines] = head.subarray(0, end).toString('latin1').split('\r\n');
      const [method, target] = requestLine!.split(' ');
      const authorization = headerLines.find((l) => /^proxy-authorization:/i.test(l))?.replace(/^[^:]*:\s*/, '');
      if (method !== 'CONNECT' || !target) return void client.end('HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n');
      if (expected !== undefined && authorization !== expected) {
        proxy.refused++;
        return void client.end('HTTP/1.1 407 Proxy Authentication Required\r\nproxy-authenticate: Basic realm="proxy"\r\ncontent-length: 0\r\n\r\n');
      }
      const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
      const upstream = createConnection({ host: host.endsWith('.test') ? '127.0.0.1' : host, port }, () => {
        proxy.tunnels.set(target, (proxy.tunnels.get(target) ?? 0) + 1);
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        const rest = head.subarray(end + 4);
        if (rest.length > 0) upstream.write(rest);
        client.pipe(upstream).pipe(client);
      });
      sockets.add(upstream);
      upstream.on('close', () => (sockets.delete(upstream), client.destroy()));
      upstream.on('error', () => client.end('HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n'));
      client.on('close', () => upstream.destroy());
    };
    client.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  proxy.url = credentials ? `http://${encodeURIComponent(credentials.user)}:${encodeURIComponent(credentials.password)}@127.0.0.1:${port}` : `http://127.0.0.1:${port}`;
  proxy.close = () => {
    for (const s of sockets) s.destroy();
    return new Promise((resolve) => server.close(() => resolve()));
  };
  return proxy;
}
