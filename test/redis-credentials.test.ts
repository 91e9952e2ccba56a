import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { RedisConnection } from '../src/redis.js';
import { loggedLines } from './helpers/log-lines.js';
import { describeWithRedis, TestRedis } from './helpers/redis.js';

/**
 * Why Redis is not in use, said: a wrong password in REDIS_URL (or a rotated one) showed as "Redis not reachable
 * since start", with nothing about the cause, so whoever read it looked at the network.
 */
describeWithRedis('why Redis is not in use', () => {
  const redis = new TestRedis();
  beforeAll(() => redis.start('--requirepass', 'right-password'));
  afterAll(() => redis.stop());

  it('credentials refused: one line at error level naming them, not "not reachable", however often it tries; in use once they are taken', async () => {
    const { logger, lines } = loggedLines('info');
    const url = `redis://:wrong-password@127.0.0.1:${redis.port}`;
    const connection = new RedisConnection({ url, keyPrefix: 'gwcreds:' }, logger);
    try {
      await expect.poll(() => lines.filter((l) => l.msg.startsWith('Redis refuses our credentials')).length, { timeout: 3000 }).toBe(1);
      const refused = lines.find((l) => l.msg.startsWith('Redis refuses our credentials'))!;
      expect(refused).toMatchObject({ level: 50, redis: `redis://:***@127.0.0.1:${redis.port}`, err: expect.stringMatching(/^WRONGPASS/) });
      // Tried again every 2 s at most, and still one line; no "not reachable" (3 s after start) for it.
      await new Promise((r) => setTimeout(r, 5000));
      expect(lines.filter((l) => l.level >= 40).map((l) => l.msg.split(':')[0])).toEqual(['Redis refuses our credentials']);
      expect(connection.available).toBe(false);
      expect(connection.state).toBe('credentials refused');
      // The password it was given is made the right one (a rotation finished): connected.
      const admin = new Redis(redis.url, { password: 'right-password' });
      await admin.config('SET', 'requirepass', 'wrong-password');
      admin.disconnect();
      await expect.poll(() => connection.available, { timeout: 5000 }).toBe(true);
      expect(lines.at(-1)!.msg).toBe('Redis connected');
      expect(connection.state).toBe('ok');
    } finally {
      await connection.close();
    }
  });

  it('nothing listening: "not reachable since start" says what the connection met', async () => {
    const port = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });
    const { logger, lines } = loggedLines('info');
    const connection = new RedisConnection({ url: `redis://127.0.0.1:${port}`, keyPrefix: 'gwnone:' }, logger);
    try {
      await expect
        .poll(() => lines.find((l) => l.msg.startsWith('Redis not reachable since start')), { timeout: 5000 })
        .toMatchObject({ level: 40, err: expect.stringMatching(/ECONNREFUSED/) });
    } finally {
      await connection.close();
    }
  });
});
