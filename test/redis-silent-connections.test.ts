import { afterAll, beforeAll, expect, it } from 'vitest';
import { InvalidationBus, type Invalidation } from '../src/cache/invalidation-bus.js';
import { RedisConnection, SILENT_CONNECTION_MS } from '../src/redis.js';
import { loggedLines } from './helpers/log-lines.js';
import { describeWithRedis, TestRedis } from './helpers/redis.js';
import { proxyTo, type RedisProxy } from './helpers/redis-proxy.js';

/**
 * Connections to Redis that go silent with no FIN or reset (Redis moved to another address, a failover, a NAT that
 * forgot them): nothing ended them until TCP gave up, about 15 minutes. Each is now dropped and opened again after
 * SILENT_CONNECTION_MS with a command unanswered; the proxy's new connections reach Redis.
 */
describeWithRedis('connections to Redis gone silent', () => {
  const redis = new TestRedis();
  beforeAll(() => redis.start());
  afterAll(() => redis.stop());

  const keyPrefix = () => `gsilent${Math.random().toString(36).slice(2, 8)}:`;

  /** A main connection to Redis through a proxy that can go silent, once connected, and the lines it logged. */
  async function connectedThroughProxy() {
    const proxy = await proxyTo(redis.port);
    const { logger, lines } = loggedLines('info');
    const connection = new RedisConnection({ url: proxy.url, keyPrefix: keyPrefix() }, logger);
    await expect.poll(() => connection.available, { timeout: 3000 }).toBe(true);
    return { proxy, lines, connection };
  }

  it('the main connection is dropped and opened again: commands answer within seconds, with one warn line and one info line', async () => {
    const { proxy, lines, connection } = await connectedThroughProxy();
    try {
      await connection.client.set(connection.key('k'), 'v');
      proxy.blackhole();
      const silentAt = performance.now();
      await expect(connection.client.get(connection.key('k'))).rejects.toThrow(/timed out/i);
      await expect.poll(() => connection.client.get(connection.key('k')).catch(() => null), { timeout: SILENT_CONNECTION_MS + 4000, interval: 250 }).toBe('v');
      expect(performance.now() - silentAt).toBeLessThan(SILENT_CONNECTION_MS + 4000);
      const said = lines.filter((l) => l.level >= 30 && /Redis/.test(l.msg)).map((l) => `${l.level} ${l.msg.split(':')[0]}`);
      expect(said).toEqual(['30 Redis connected', '40 Redis unreachable', '30 Redis is back']);
    } finally {
      await connection.close();
      await proxy.close();
    }
  });

  it('an idle connection gone silent is found by its pings and opened again before a command needs it', async () => {
    const { proxy, lines, connection } = await connectedThroughProxy();
    try {
      proxy.blackhole();
      // Nothing is sent: a ping within SILENT_CONNECTION_MS, unanswered for as long again, ends it.
      await expect.poll(() => lines.some((l) => l.msg.startsWith('Redis is back')), { timeout: 2 * SILENT_CONNECTION_MS + 4000, interval: 250 }).toBe(true);
      const started = performance.now();
      expect(await connection.client.ping()).toBe('PONG');
      expect(performance.now() - started).toBeLessThan(500);
    } finally {
      await connection.close();
      await proxy.close();
    }
  });

  it('a subscriber gone silent is found by the pings and subscribes again: invalidations reach it, and its L1 is cleared for what it missed', async () => {
    const proxy: RedisProxy = await proxyTo(redis.port);
    const prefix = keyPrefix();
    const { logger } = loggedLines('info');
    const here = new RedisConnection({ url: redis.url, keyPrefix: prefix }, logger);
    const away = new RedisConnection({ url: proxy.url, keyPrefix: prefix }, logger);
    const heard: Invalidation[] = [];
    let resyncs = 0;
    const handlers = (onDrop: (m: Invalidation) => void, onResync: () => void) => ({ dropLocal: onDrop, resync: onResync, deleteShared: () => Promise.resolve(true) });
    const sender = new InvalidationBus(
      here,
      logger,
      handlers(
        () => undefined,
        () => undefined,
      ),
    );
    const receiver = new InvalidationBus(
      away,
      logger,
      handlers(
        (m) => heard.push(m),
        () => resyncs++,
      ),
    );
    try {
      await expect.poll(() => here.available && away.available, { timeout: 3000 }).toBe(true);
      // The receiver subscribes on its own connection once that one is ready, which `available` does not wait for
      // (once, in CI, a single message sent at once was not heard): sent until heard.
      await expect
        .poll(
          async () => {
            await sender.publish({ entity: 'profile', groups: ['before'] });
            return heard.length > 0;
          },
          { timeout: 5000, interval: 200 },
        )
        .toBe(true);
      await new Promise((r) => setTimeout(r, 100));
      heard.length = 0;
      proxy.blackhole();
      await sender.publish({ entity: 'profile', groups: ['during'] });
      // The ping goes within 5 s, and its silence ends the connection SILENT_CONNECTION_MS later; before, never.
      await expect.poll(() => resyncs, { timeout: 5000 + SILENT_CONNECTION_MS + 4000, interval: 250 }).toBe(1);
      await sender.publish({ entity: 'profile', groups: ['after'] });
      // What was sent while it was deaf is not heard (its L1 was cleared for it instead: the resync); what came after is.
      await expect.poll(() => heard.map((m) => m.groups[0]), { timeout: 3000 }).toEqual(['after']);
    } finally {
      await Promise.all([sender.close(), receiver.close()]);
      await Promise.all([here.close(), away.close()]);
      await proxy.close();
    }
  });
});
