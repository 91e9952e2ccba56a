import { createConnection, createServer, type Server, type Socket } from 'node:net';

/** A loopback proxy in front of Redis, as the network between an instance and its Redis. */
export interface RedisProxy {
  port: number;
  url: string;
  /** Drops every connection and refuses new ones until `mend()`, while Redis itself stays up for others. */
  cut(): void;
  mend(): void;
  /**
   * The connections open now go silent both ways, and stay open: what is sent on them is dropped, no reply comes,
   * no FIN or RST (a Redis pod moved to another address, a failover, a NAT that forgot them). New ones work.
   */
  blackhole(): void;
  /** New connections go to the Redis on this port; those open stay where they are (DNS moved to a failover's new primary). */
  moveTo(redisPort: number): void;
  close(): Promise<void>;
}

/** `holdMs` holds each new connection's first replies (the few milliseconds of its handshake, stretched). */
export async function proxyTo(firstPort: number, holdMs = 0): Promise<RedisProxy> {
  let redisPort = firstPort;
  const sockets = new Set<Socket>();
  const silent = new WeakSet<Socket>();
  let refusing = false;
  const server: Server = createServer((client) => {
    if (refusing) return void client.destroy();
    const upstream = createConnection({ port: redisPort, host: '127.0.0.1' });
    sockets.add(client).add(upstream);
    const held: Buffer[] = [];
    let holding = holdMs > 0;
    if (holding) {
      setTimeout(() => {
        holding = false;
        for (const chunk of held) client.write(chunk);
      }, holdMs);
    }
    upstream.on('data', (chunk: Buffer) => {
      if (silent.has(upstream)) return;
      if (holding) held.push(chunk);
      else client.write(chunk);
    });
    client.on('data', (chunk: Buffer) => {
      if (!silent.has(client)) upstream.write(chunk);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const cut = () => {
    refusing = true;
    for (const s of sockets) s.destroy();
  };
  const port = (server.address() as { port: number }).port;
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    cut,
    mend: () => (refusing = false),
    blackhole: () => {
      for (const s of sockets) silent.add(s);
    },
    moveTo: (port) => (redisPort = port),
    close: () => {
      cut();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
