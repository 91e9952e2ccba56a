import { randomBytes } from 'node:crypto';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LiveEvents } from '../src/realtime/live-events.js';
import { createLogger } from '../src/logger.js';
import type { NotificationEntity } from '../src/sources/models.js';
import { describeWithRedis, TestRedis } from './helpers/redis.js';

/**
 * A loopback proxy in front of Redis that holds each new connection's first
 * replies for `holdMs`: the few milliseconds a real connection spends in its
 * handshake, stretched so a subscription can be made during them every time.
 */
async function slowHandshakeProxy(redisPort: number, holdMs: number): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = createConnection({ port: redisPort, host: '127.0.0.1' });
    sockets.add(client).add(upstream);
    const held: Buffer[] = [];
    let holding = true;
    setTimeout(() => {
      holding = false;
      for (const chunk of held) client.write(chunk);
    }, holdMs);
    upstream.on('data', (chunk: Buffer) => (holding ? held.push(chunk) : client.write(chunk)));
    client.on('data', (chunk: Buffer) => upstream.write(chunk));
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

describeWithRedis('LiveEvents through Redis', () => {
  const redis = new TestRedis();
  beforeAll(() => redis.start());
  afterAll(() => redis.stop());

  it('a subscription made while the pub/sub connection is in its handshake hears events (ioredis#2037: its SUBSCRIBE was lost)', async () => {
    const proxy = await slowHandshakeProxy(redis.port, 400);
    const keyPrefix = `glive${randomBytes(3).toString('hex')}:`;
    const live = new LiveEvents({ url: `redis://127.0.0.1:${proxy.port}`, keyPrefix }, createLogger({ level: 'silent' }));
    const control = new Redis(redis.url);
    try {
      // Connected, its first replies held: the connection is in its handshake.
      await new Promise((r) => setTimeout(r, 150));
      const queue = live.subscribe('notificationAdded', 'user-1', { latest: false, max: 10 });
      const channel = `${keyPrefix}live:notificationAdded:user-1`;
      const listening = async () => ((await control.pubsub('NUMSUB', channel)) as [string, number])[1];
      // Before: the SUBSCRIBE's reply put the connection in subscriber mode before ioredis's ready check (INFO) was sent;
      // the check was refused, ioredis reconnected without the channel, and nobody listened on it again.
      await expect.poll(listening, { timeout: 3000 }).toBe(1);
      await new Promise((r) => setTimeout(r, 500));
      expect(await listening()).toBe(1);
      const notification = { id: 'n-1', title: 'hello' } as NotificationEntity;
      await control.publish(channel, JSON.stringify(notification));
      const next = await Promise.race([queue.next(), new Promise((r) => setTimeout(() => r('nothing heard'), 2000))]);
      expect(next).toEqual({ done: false, value: notification });
      await queue.return();
    } finally {
      live.close();
      control.disconnect();
      await proxy.close();
    }
  });
});
