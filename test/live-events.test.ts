import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LiveEvents } from '../src/realtime/live-events.js';
import { createLogger } from '../src/logger.js';
import { silentAfterBlocking } from '../src/redis.js';
import type { NotificationEntity } from '../src/sources/models.js';
import type { SubscriberQueue } from '../src/realtime/subscriber-queue.js';
import { describeWithRedis, TestRedis } from './helpers/redis.js';
import { proxyTo } from './helpers/redis-proxy.js';

const notification = (id: string) => ({ id, title: `title ${id}` }) as NotificationEntity;
const heardWithin = async <T>(queue: SubscriberQueue<T>, ms: number): Promise<T | 'nothing heard'> => {
  const next = await Promise.race([queue.next(), new Promise<'nothing heard'>((r) => setTimeout(() => r('nothing heard'), ms))]);
  return typeof next === 'string' ? next : (next.value as T);
};

/** Everything the queue gives, as it comes, until it ends (`reading` then settles). */
const heardAll = <T>(queue: SubscriberQueue<T>): { got: T[]; reading: Promise<void> } => {
  const got: T[] = [];
  const reading = (async () => {
    for (let r = await queue.next(); !r.done; r = await queue.next()) got.push(r.value as T);
  })();
  return { got, reading };
};

describeWithRedis('LiveEvents through Redis', () => {
  const redis = new TestRedis();
  beforeAll(() => redis.start());
  afterAll(() => redis.stop());

  /** Two instances under one key prefix: `away` reaches Redis through a proxy that can be cut. */
  async function twoInstances(options: { holdMs?: number; kept?: number; logs?: string[] } = {}) {
    const proxy = await proxyTo(redis.port, options.holdMs);
    const keyPrefix = `glive${randomBytes(3).toString('hex')}:`;
    const lines = new Writable({ write: (chunk: Buffer, _e, done) => (options.logs?.push(chunk.toString()), done()) });
    const logger = createLogger({ level: 'info', destination: lines });
    const here = new LiveEvents({ url: redis.url, keyPrefix }, logger, null, options.kept);
    const away = new LiveEvents({ url: `redis://127.0.0.1:${proxy.port}`, keyPrefix }, logger, null, options.kept);
    await Promise.all([here.reading(), away.reading()]);
    return {
      here,
      away,
      proxy,
      async close() {
        here.close();
        away.close();
        await proxy.close();
      },
    };
  }

  it('a subscription made while the connection to Redis is in its handshake hears events (ioredis#2037 lost its SUBSCRIBE under pub/sub)', async () => {
    const { here, away, close } = await twoInstances({ holdMs: 400 });
    try {
      // Connected, its first replies held: the connection is in its handshake.
      await new Promise((r) => setTimeout(r, 150));
      const queue = away.subscribe('notificationAdded', 'user-1', { latest: false, max: 10 });
      await new Promise((r) => setTimeout(r, 900));
      expect(await here.publish('notificationAdded', 'user-1', notification('n-1'))).toBe(true);
      expect(await heardWithin(queue, 2000)).toEqual(notification('n-1'));
      await queue.return();
    } finally {
      await close();
    }
  });

  it("events announced while an instance's connection to Redis is away reach its subscribers when it is back, in order, once (pub/sub lost them)", async () => {
    const { here, away, proxy, close } = await twoInstances();
    try {
      const queue = away.subscribe('notificationAdded', 'user-2', { latest: false, max: 100 });
      const { got, reading } = heardAll(queue);
      await here.publish('notificationAdded', 'user-2', notification('before'));
      await expect.poll(() => got.length, { timeout: 3000 }).toBe(1);
      proxy.cut();
      for (let i = 0; i < 20; i++) expect(await here.publish('notificationAdded', 'user-2', notification(`during-${i}`))).toBe(true);
      await new Promise((r) => setTimeout(r, 1500));
      expect(got.length).toBe(1);
      proxy.mend();
      await expect.poll(() => got.length, { timeout: 5000 }).toBe(21);
      await here.publish('notificationAdded', 'user-2', notification('after'));
      await expect.poll(() => got.length, { timeout: 3000 }).toBe(22);
      expect(got).toEqual([notification('before'), ...Array.from({ length: 20 }, (_, i) => notification(`during-${i}`)), notification('after')]);
      await queue.return();
      await reading;
    } finally {
      await close();
    }
  });

  it('an instance whose connections to Redis went silent (no FIN, no reset) hears what was announced meanwhile, in order, once they are opened again', async () => {
    const { here, away, proxy, close } = await twoInstances();
    try {
      const queue = away.subscribe('notificationAdded', 'user-silent', { latest: false, max: 100 });
      const { got, reading } = heardAll(queue);
      await here.publish('notificationAdded', 'user-silent', notification('before'));
      await expect.poll(() => got.length, { timeout: 3000 }).toBe(1);
      proxy.blackhole();
      for (let i = 0; i < 5; i++) expect(await here.publish('notificationAdded', 'user-silent', notification(`during-${i}`))).toBe(true);
      // Its XREAD waited on the silent connection until TCP gave up (about 15 minutes); now the silence ends it.
      await expect.poll(() => got.length, { timeout: silentAfterBlocking(5000) + 5000, interval: 250 }).toBe(6);
      expect(got).toEqual([notification('before'), ...Array.from({ length: 5 }, (_, i) => notification(`during-${i}`))]);
      await queue.return();
      await reading;
    } finally {
      await close();
    }
  });

  it('an instance started while it cannot reach Redis hears what was announced meanwhile, once it can; not what came before it started', async () => {
    const proxy = await proxyTo(redis.port);
    const keyPrefix = `glive${randomBytes(3).toString('hex')}:`;
    const logger = createLogger({ level: 'warn', destination: new Writable({ write: (_c, _e, done) => done() }) });
    const here = new LiveEvents({ url: redis.url, keyPrefix }, logger, null);
    await here.reading();
    await here.publish('notificationAdded', 'user-8', notification('before it started'));
    await new Promise((r) => setTimeout(r, 20));
    proxy.cut();
    const starting = new LiveEvents({ url: `redis://127.0.0.1:${proxy.port}`, keyPrefix }, logger, null);
    try {
      const queue = starting.subscribe('notificationAdded', 'user-8', { latest: false, max: 10 });
      await new Promise((r) => setTimeout(r, 300));
      await here.publish('notificationAdded', 'user-8', notification('while it could not reach Redis'));
      proxy.mend();
      await starting.reading();
      expect(await heardWithin(queue, 3000)).toEqual(notification('while it could not reach Redis'));
      await here.publish('notificationAdded', 'user-8', notification('after'));
      expect(await heardWithin(queue, 2000)).toEqual(notification('after'));
      await queue.return();
    } finally {
      here.close();
      starting.close();
      await proxy.close();
    }
  });

  it('a once key announces its event once across instances; a repeat says false and is not heard', async () => {
    const { here, away, close } = await twoInstances();
    try {
      const queue = here.subscribe('notificationAdded', 'user-3', { latest: false, max: 10 });
      expect(await here.publish('notificationAdded', 'user-3', notification('n-3'), { key: 'notifications n-3', ttlMs: 60_000 })).toBe(true);
      expect(await away.publish('notificationAdded', 'user-3', notification('n-3'), { key: 'notifications n-3', ttlMs: 60_000 })).toBe(false);
      expect(await here.publish('notificationAdded', 'user-3', notification('n-4'), { key: 'notifications n-4', ttlMs: 60_000 })).toBe(true);
      expect(await heardWithin(queue, 2000)).toEqual(notification('n-3'));
      expect(await heardWithin(queue, 2000)).toEqual(notification('n-4'));
      expect(await heardWithin(queue, 300)).toBe('nothing heard');
      await queue.return();
    } finally {
      await close();
    }
  });

  it('an instance away for more events than LIVE_EVENTS_KEPT says, in one warn line, that its subscribers missed some', async () => {
    const logs: string[] = [];
    const { here, away, proxy, close } = await twoInstances({ kept: 100, logs });
    try {
      const queue = away.subscribe('unreadCountChanged', 'user-4', { latest: true });
      await here.publish('unreadCountChanged', 'user-4', true);
      expect(await heardWithin(queue, 2000)).toBe(true);
      proxy.cut();
      for (let i = 0; i < 1000; i++) await here.publish('unreadCountChanged', 'user-4', true);
      proxy.mend();
      await expect.poll(() => logs.filter((l) => l.includes('were trimmed')).length, { timeout: 5000 }).toBe(1);
      await queue.return();
    } finally {
      await close();
    }
  });

  /** One instance and a plain client on the same keys, for doing to Redis what a restart or a restore does. */
  async function instanceAndControl(logs: string[]) {
    const keyPrefix = `glive${randomBytes(3).toString('hex')}:`;
    const lines = new Writable({ write: (chunk: Buffer, _e, done) => (logs.push(chunk.toString()), done()) });
    const live = new LiveEvents({ url: redis.url, keyPrefix }, createLogger({ level: 'info', destination: lines }), null);
    await live.reading();
    const control = new Redis(redis.url);
    return { live, control, slot: `{${keyPrefix}live}`, close: () => (live.close(), control.disconnect()) };
  }

  it('Redis losing its data (the stream and its counter gone) is said in one warn line, and later events are heard', async () => {
    const logs: string[] = [];
    const { live, control, slot, close } = await instanceAndControl(logs);
    try {
      const queue = live.subscribe('notificationAdded', 'user-6', { latest: false, max: 10 });
      for (const id of ['n-1', 'n-2', 'n-3']) await live.publish('notificationAdded', 'user-6', notification(id));
      for (const id of ['n-1', 'n-2', 'n-3']) expect(await heardWithin(queue, 2000)).toEqual(notification(id));
      // What a Redis restarted without its data holds: nothing under either key. A restart takes longer than a
      // millisecond: an entry appended in the same one as n-3 would get n-3's id again, which this instance has read.
      await new Promise((r) => setTimeout(r, 5));
      await control.del(`${slot}:events`, `${slot}:counter`);
      await live.publish('notificationAdded', 'user-6', notification('n-4'));
      expect(await heardWithin(queue, 2000)).toEqual(notification('n-4'));
      await expect.poll(() => logs.filter((l) => l.includes('live-event counter went back')).length, { timeout: 2000 }).toBe(1);
      await live.publish('notificationAdded', 'user-6', notification('n-5'));
      expect(await heardWithin(queue, 2000)).toEqual(notification('n-5'));
      expect(logs.filter((l) => l.includes('live-event counter went back'))).toHaveLength(1);
      await queue.return();
    } finally {
      close();
    }
  });

  it("a stream whose ids went back (Redis's clock behind the last id read): one warn line, and the instance hears events again", async () => {
    const logs: string[] = [];
    const { live, control, slot, close } = await instanceAndControl(logs);
    try {
      const queue = live.subscribe('notificationAdded', 'user-7', { latest: false, max: 10 });
      // An entry an hour ahead of Redis's clock: the last id this instance reads.
      await control.xadd(`${slot}:events`, `${Date.now() + 3_600_000}-0`, 'c', 'nobody', 'd', '{}', 'n', String(await control.incr(`${slot}:counter`)));
      await live.publish('notificationAdded', 'user-6', notification('n-0')); // appended after it, so read past it
      await new Promise((r) => setTimeout(r, 300));
      await control.del(`${slot}:events`, `${slot}:counter`);
      await live.publish('notificationAdded', 'user-7', notification('n-1'));
      // Found after a read that waited for nothing (5 s); n-1 was appended before it and is missed, as the line says.
      await expect.poll(() => logs.filter((l) => l.includes('ends before the last entry this instance read')).length, { timeout: 8000 }).toBe(1);
      await live.publish('notificationAdded', 'user-7', notification('n-2'));
      expect(await heardWithin(queue, 2000)).toEqual(notification('n-2'));
      await queue.return();
    } finally {
      close();
    }
  }, 15_000);

  it('a stream key Redis refuses to read (another kind of value under it): one warn line, and events are heard once it is readable', async () => {
    const logs: string[] = [];
    const keyPrefix = `glive${randomBytes(3).toString('hex')}:`;
    const control = new Redis(redis.url);
    await control.set(`{${keyPrefix}live}:events`, 'not a stream');
    const lines = new Writable({ write: (chunk: Buffer, _e, done) => (logs.push(chunk.toString()), done()) });
    const live = new LiveEvents({ url: redis.url, keyPrefix }, createLogger({ level: 'info', destination: lines }), null);
    try {
      const queue = live.subscribe('notificationAdded', 'user-5', { latest: false, max: 10 });
      await expect.poll(() => logs.filter((l) => l.includes('Reading live events from Redis failed')).length, { timeout: 3000 }).toBe(1);
      await expect(live.publish('notificationAdded', 'user-5', notification('n-5'))).rejects.toThrow(/WRONGTYPE/);
      await new Promise((r) => setTimeout(r, 1200));
      expect(logs.filter((l) => l.includes('Reading live events from Redis failed'))).toHaveLength(1);
      await control.del(`{${keyPrefix}live}:events`);
      await live.reading();
      await new Promise((r) => setTimeout(r, 700));
      expect(await live.publish('notificationAdded', 'user-5', notification('n-6'))).toBe(true);
      expect(await heardWithin(queue, 3000)).toEqual(notification('n-6'));
      await queue.return();
    } finally {
      live.close();
      control.disconnect();
    }
  });
});
