import { mkdtempSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { request, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { defaultMaxClientConnections, openFileLimit } from '../src/http/client-connections.js';
import { cleanEnv, runCommand, startUpstreamsProcess, stopAll } from './helpers/processes.js';
import { stackPool, type Stack } from './helpers/stack.js';
import { seriesValue } from './helpers/metrics.js';

/**
 * Each client connection holds a file descriptor, and vendor calls and Redis need them too. Measured before the cap:
 * 1,100 idle keep-alive connections against a process allowed 1,024 files, and a new client waited unanswered while
 * the change feed's vendor calls failed as "unavailable". Now a connection past MAX_CLIENT_CONNECTIONS closes the
 * ones idle the longest, or is refused when all are busy; an EMFILE that still happens is named as ours.
 */
const stackWith = stackPool();
const QUERY = `query($id: ID!) { user(id: $id) { name metrics { pageViews } unreadNotificationCount } }`;

afterAll(stopAll);

/** `closed`: Node's own, true once the connection closed. */
type Tracked = Socket;

/** A raw connection that asks one request: idle, kept alive, once answered (or closed by the server before it). */
function idleConnection(url: string): { socket: Tracked; settled: Promise<void> } {
  const socket = connect(Number(new URL(url).port), '127.0.0.1');
  socket.on('error', () => undefined);
  socket.once('connect', () => socket.write('GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n'));
  const settled = new Promise<void>((resolve) => {
    socket.once('data', () => resolve());
    socket.once('close', () => resolve());
  });
  return { socket, settled };
}

/** `n` idle connections, opened one after another. */
async function idleConnections(url: string, n: number): Promise<Tracked[]> {
  const sockets: Tracked[] = [];
  for (let i = 0; i < n; i++) {
    const { socket, settled } = idleConnection(url);
    sockets.push(socket);
    await settled;
  }
  return sockets;
}

/** A GraphQL request on a connection of its own. */
async function queryOnNewConnection(url: string, token: string, variables: Record<string, unknown>): Promise<{ status: number; body: { data?: unknown; errors?: unknown[] } }> {
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = request(url, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, timeout: 10_000 }, resolve);
    req.on('error', reject);
    req.end(JSON.stringify({ query: QUERY, variables }));
  });
  let text = '';
  for await (const chunk of res) text += String(chunk);
  return { status: res.statusCode!, body: JSON.parse(text) as { data?: unknown; errors?: unknown[] } };
}

/** A connection whose request is in progress (the server has it: it said 100 Continue), its body still to come. */
async function busyConnection(url: string): Promise<Tracked> {
  const socket = connect(Number(new URL(url).port), '127.0.0.1');
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  socket.write('POST /graphql HTTP/1.1\r\nHost: gateway\r\ncontent-type: application/json\r\ncontent-length: 1000\r\nexpect: 100-continue\r\n\r\n');
  const [continued] = (await once(socket, 'data')) as [Buffer];
  expect(continued.toString()).toMatch(/^HTTP\/1.1 100 Continue/);
  return socket;
}

/** Whether a new connection is answered (false: closed by the server before any answer). */
async function answered(url: string): Promise<boolean> {
  const { port } = new URL(url);
  const socket = connect(Number(port), '127.0.0.1');
  socket.on('error', () => undefined);
  let data = '';
  socket.on('data', (d: Buffer) => (data += d.toString()));
  await once(socket, 'connect');
  socket.write('GET /healthz HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n');
  await once(socket, 'close');
  return data.startsWith('HTTP/1.1 200');
}

const lines = (stack: Stack, msg: RegExp) => stack.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => msg.test(String(l.msg)));

describe('client connections under MAX_CLIENT_CONNECTIONS', () => {
  it('a connection past the cap closes the ones idle the longest, and is answered', async () => {
    const stack = await stackWith({ ops: (o) => ({ ...o, maxClientConnections: 20 }) });
    const sockets = await idleConnections(stack.url, 25);
    const res = await queryOnNewConnection(stack.url, await stack.token(), { id: stack.userId(3) });
    expect(res.status).toBe(200);
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data).toMatchObject({ user: { name: expect.any(String), metrics: { pageViews: expect.any(Number) }, unreadNotificationCount: expect.any(Number) } });
    // Oldest first: what was closed is the first ones opened, at least the 5 past the cap and room for the query's.
    const closed = sockets.filter((s) => s.closed).length;
    expect(closed).toBeGreaterThanOrEqual(6);
    expect(sockets.slice(0, closed).every((s) => s.closed)).toBe(true);
    expect(sockets.slice(-10).some((s) => s.closed)).toBe(false);
    const [line] = lines(stack, /idle the longest closed/);
    expect(line).toMatchObject({ level: 40, maxClientConnections: 20, refused: 0 });
    expect(line!.closedIdle).toBeGreaterThanOrEqual(1);

    const metrics = await (await fetch(stack.url.replace('/graphql', '/metrics'))).text();
    expect(seriesValue(metrics, 'gateway_client_connections_max')).toBe(20);
    expect(seriesValue(metrics, 'gateway_client_connections_at_cap_total{outcome="idle_closed"}')).toBeGreaterThanOrEqual(closed);
    expect(seriesValue(metrics, 'gateway_client_connections_at_cap_total{outcome="refused"}')).toBe(0);
    expect(seriesValue(metrics, 'gateway_client_connections')).toBeLessThanOrEqual(20);
    for (const s of sockets) s.destroy();
  });

  it('when every connection is busy (requests, a WebSocket) a new one is refused; the busy ones are kept', async () => {
    const stack = await stackWith({ ops: (o) => ({ ...o, maxClientConnections: 10 }) });
    const ws = new WebSocket(stack.url.replace('http', 'ws'), 'graphql-transport-ws');
    await once(ws, 'open');
    ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${await stack.token()}` } }));
    await once(ws, 'message');
    // With the WebSocket, the cap; the warm-up's idle connection, if still open, is closed on the way.
    const busy: Tracked[] = [];
    for (let i = 0; i < 9; i++) busy.push(await busyConnection(stack.url));

    expect(await answered(stack.url)).toBe(false);
    expect(busy.filter((s) => s.closed)).toHaveLength(0);
    expect(ws.readyState).toBe(WebSocket.OPEN);
    const [line] = lines(stack, /all busy/);
    expect(line).toMatchObject({ level: 40, maxClientConnections: 10, refused: 1 });

    // One request ends: its connection is idle, and the next client takes its place.
    busy[0]!.write(`{"query":${' '.repeat(974)}"{ __typename }"}`);
    await once(busy[0]!, 'data');
    expect(await answered(stack.url)).toBe(true);
    expect(busy[0]!.closed).toBe(true);
    expect(busy.slice(1).filter((s) => s.closed)).toHaveLength(0);
    expect(ws.readyState).toBe(WebSocket.OPEN);
    ws.close();
    for (const s of busy) s.destroy();
  });
});

describe("the default cap, from the process's open-file limit", () => {
  it('reads the soft limit; leaves the vendor pools and 128 descriptors; at most 10000, at least half the limit', () => {
    const dir = mkdtempSync(join(tmpdir(), 'limits-'));
    const file = (soft: string) => {
      const path = join(dir, `limits-${soft}`);
      writeFileSync(
        path,
        `Limit                     Soft Limit           Hard Limit           Units\nMax open files            ${soft}                 524288               files\n`,
      );
      return path;
    };
    expect(openFileLimit(file('1024'))).toBe(1024);
    expect(openFileLimit(file('unlimited'))).toBeNull();
    expect(openFileLimit(join(dir, 'none'))).toBeNull();
    expect(defaultMaxClientConnections(1024, 104)).toBe(792);
    expect(defaultMaxClientConnections(256, 104)).toBe(128);
    expect(defaultMaxClientConnections(1_048_576, 104)).toBe(10_000);
    expect(defaultMaxClientConnections(null, 104)).toBe(10_000);
  });
});

describe('a process allowed 1024 open files, 1100 idle clients connected', () => {
  const secret = 'client-connections-test-secret-0123456789abcdef';
  /** The server under `ulimit -n 1024`, against the vendors in their own process, with `env` added; then 1100 idle clients. */
  async function serverAtLimit(env: Record<string, string>) {
    const { child: vendorsProcess, env: vendors } = await startUpstreamsProcess();
    const userId = /A user id to try: (\S+)/.exec(vendorsProcess.output())![1]!;
    const server = runCommand(
      'bash',
      ['-c', 'ulimit -n 1024 && exec "$0" --import tsx src/main.ts', process.execPath],
      cleanEnv({ ...vendors, PORT: '0', WORKERS: '1', LOG_LEVEL: 'info', AUTH_JWT_SECRET: secret, ...env }),
    );
    const [, url] = await server.waitFor(/GraphQL endpoint: (\S+)/, 60_000);
    const opened = Array.from({ length: 1100 }, () => idleConnection(url!));
    await Promise.race([Promise.all(opened.map((o) => o.settled)), new Promise((r) => setTimeout(r, 5000))]);
    const token = await new SignJWT({ scope: 'admin' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('auth0|test')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(secret));
    return { server, url: url!, sockets: opened.map((o) => o.socket), token, userId };
  }

  it('by default, idle ones are closed and a new client gets every field', async () => {
    const { server, url, sockets, token, userId } = await serverAtLimit({});
    const res = await queryOnNewConnection(url, token, { id: userId });
    expect(res.status).toBe(200);
    expect(res.body.errors).toBeUndefined();
    expect(sockets.filter((s) => s.closed).length).toBeGreaterThanOrEqual(1100 - 792);
    expect(server.output()).toMatch(/"maxClientConnections":792.*idle the longest closed/);
    expect(server.output()).not.toMatch(/no file descriptor left/);
    for (const s of sockets) s.destroy();
    await server.stop();
  }, 60_000);

  it('with the cap set over the limit: said at start, and a vendor call that meets EMFILE is named as ours', async () => {
    const { server, sockets, token, userId } = await serverAtLimit({ MAX_CLIENT_CONNECTIONS: '5000', IDENTITY_CHANGE_FEED: 'off' });
    expect(server.output()).toMatch(/MAX_CLIENT_CONNECTIONS is over what the open-file limit leaves/);
    // On a connection the server took before it ran out: the vendors' pools are cold, so every call needs a new one.
    const open = sockets.find((s) => !s.closed && s.bytesRead > 0)!;
    let answer = '';
    open.on('data', (d: Buffer) => (answer += d.toString()));
    const body = JSON.stringify({ query: QUERY, variables: { id: userId } });
    open.write(
      `POST /graphql HTTP/1.1\r\nHost: gateway\r\ncontent-type: application/json\r\nauthorization: Bearer ${token}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    await expect.poll(() => answer.includes('"errors"'), { timeout: 10_000 }).toBe(true);
    expect(answer).toMatch(/"code":"SOURCE_UNAVAILABLE"/);
    await expect.poll(() => server.output(), { timeout: 5000 }).toMatch(/no file descriptor left to connect \(EMFILE/);
    for (const s of sockets) s.destroy();
    await server.stop();
  }, 60_000);
});
