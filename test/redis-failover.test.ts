import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { newRedisClient, RedisConnection } from '../src/redis.js';
import { loggedLines } from './helpers/log-lines.js';
import { describeWithRedis, TestRedis } from './helpers/redis.js';
import { proxyTo, type RedisProxy } from './helpers/redis-proxy.js';
import { stackPool, type Stack } from './helpers/stack.js';

/**
 * A failover as managed Redis (ElastiCache, Azure, Sentinel behind one name) makes one: the replica becomes the
 * primary, the old primary a replica of it, and the name moves, while connections already open stay where they
 * were. Every write on them is answered READONLY, forever: the connection itself is fine. Each is now opened again
 * (through the name, so to the new primary) on the first such answer.
 */
type AnyData = Record<string, any>;

describeWithRedis('a Redis failover: connections left on the old primary, now a replica', () => {
  const oldPrimary = new TestRedis();
  const newPrimary = new TestRedis();
  let proxy: RedisProxy;
  let admin: { old: Redis; new: Redis };
  const folders: string[] = [];

  beforeAll(async () => {
    // A replica's full sync starts at once, not after the 5 s Redis waits for more replicas to share it; the file
    // a replica loads it from goes to a folder of its own, not the working directory.
    const settings = async () => ['--repl-diskless-sync-delay', '0', '--dir', folders[folders.push(await mkdtemp(join(tmpdir(), 'gw-failover-'))) - 1]!];
    await Promise.all([oldPrimary.start(...(await settings())), newPrimary.start(...(await settings()))]);
  });
  afterAll(async () => {
    await Promise.all([oldPrimary.stop(), newPrimary.stop()]);
    await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
  });

  beforeEach(async () => {
    admin = { old: new Redis(oldPrimary.url), new: new Redis(newPrimary.url) };
    await admin.old.call('REPLICAOF', 'NO', 'ONE');
    await admin.new.call('REPLICAOF', '127.0.0.1', String(oldPrimary.port));
    await expect.poll(async () => /master_link_status:up/.test(await admin.new.info('replication')), { timeout: 10_000 }).toBe(true);
    proxy = await proxyTo(oldPrimary.port);
  });
  afterEach(async () => {
    await proxy.close();
    admin.old.disconnect();
    admin.new.disconnect();
  });

  /** The replica promoted, the old primary made its replica, and the name (the proxy) moved to the new one. */
  async function failOver(): Promise<void> {
    // A planned failover waits for the replica to have every write (replication is asynchronous).
    const offset = async (client: Redis, field: string) => Number(new RegExp(`${field}:(\\d+)`).exec(await client.info('replication'))?.[1] ?? -1);
    await expect.poll(async () => (await offset(admin.new, 'slave_repl_offset')) >= (await offset(admin.old, 'master_repl_offset')), { timeout: 5000 }).toBe(true);
    await admin.new.call('REPLICAOF', 'NO', 'ONE');
    await admin.old.call('REPLICAOF', '127.0.0.1', String(newPrimary.port));
    proxy.moveTo(newPrimary.port);
    await expect.poll(async () => /master_link_status:up/.test(await admin.old.info('replication')), { timeout: 10_000 }).toBe(true);
  }

  it('the main connection: one write is refused, the connection is opened again, and writes land on the new primary; one warn line, no outage reported', async () => {
    const { logger, lines } = loggedLines('info');
    const connection = new RedisConnection({ url: proxy.url, keyPrefix: 'gwfailover1:' }, logger);
    try {
      await expect.poll(() => connection.available, { timeout: 3000 }).toBe(true);
      await connection.client.set(connection.key('before'), 'v');
      await failOver();
      await expect(connection.client.set(connection.key('after'), 'v')).rejects.toThrow(/^READONLY/);
      const refusedAt = performance.now();
      await expect.poll(() => connection.client.set(connection.key('after'), 'v').catch((e: Error) => e.message), { timeout: 3000, interval: 50 }).toBe('OK');
      expect(performance.now() - refusedAt).toBeLessThan(1000);
      expect(await admin.new.get(connection.key('after'))).toBe('v');
      expect(await admin.new.get(connection.key('before'))).toBe('v');
      // More writes, all answered: the connection reached the primary and stays there.
      for (let i = 0; i < 20; i++) await connection.client.set(connection.key(`more${i}`), 'v');
      const said = lines.filter((l) => l.level >= 30 && /Redis/.test(l.msg)).map((l) => `${l.level} ${l.msg.split(/[:(]/)[0]!.trim()}`);
      expect(said).toEqual(['30 Redis connected', '40 Redis answered as a read-only replica']);
    } finally {
      await connection.close();
    }
  });

  it("a connection that queues commands while it connects (the live log writer's): writes in flight together are all refused, and all sent again on the new primary", async () => {
    const writer = newRedisClient({ url: proxy.url }, { maxRetriesPerRequest: 1, commandTimeout: 3000 });
    try {
      await writer.set('gwfailover4:before', 'v');
      await failOver();
      // Sent together: each reaches the old primary before the first refusal closes the connection.
      const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => writer.set(`gwfailover4:k${i}`, 'v')));
      expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual(Array(8).fill('OK'));
      expect(await admin.new.mget(Array.from({ length: 8 }, (_, i) => `gwfailover4:k${i}`))).toEqual(Array(8).fill('v'));
    } finally {
      writer.disconnect();
    }
  });

  it('a Redis that stays a replica (REDIS_URL names one): the connection is opened again at most once a second, one warn line a minute', async () => {
    await admin.old.call('REPLICAOF', '127.0.0.1', String(newPrimary.port));
    const { logger, lines } = loggedLines('info');
    const connection = new RedisConnection({ url: proxy.url, keyPrefix: 'gwfailover2:' }, logger);
    let connects = 0;
    connection.client.on('connect', () => connects++);
    try {
      await expect.poll(() => connection.available, { timeout: 3000 }).toBe(true);
      const started = performance.now();
      let refused = 0;
      while (performance.now() - started < 2500) {
        await connection.client.set(connection.key('k'), 'v').catch((e: Error) => (/^READONLY|writeable/.test(e.message) ? refused++ : Promise.reject(e)));
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(refused).toBeGreaterThan(50);
      // The first connection and at most one more a second: a write a few ms apart did not each open one.
      expect(connects).toBeGreaterThanOrEqual(2);
      expect(connects).toBeLessThanOrEqual(4);
      expect(lines.filter((l) => l.msg.startsWith('Redis answered as a read-only replica'))).toHaveLength(1);
      expect(lines.filter((l) => /unreachable|is back/.test(l.msg))).toEqual([]);
    } finally {
      await connection.close();
    }
  });

  const stackWith = stackPool((options) => ({
    ...options,
    cache: { enabled: true },
    writes: { deliveryBackoffMs: 100, deliveryMaxAttempts: 4 },
    tuning: { audit: { retryMaxAttempts: 1 } },
  }));
  const UPDATE = `mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { status deliveries { id target state } } }`;

  it('the whole server: after a failover, cached entries, queued deliveries and the worker that retries them are on the new primary', async () => {
    const stack: Stack = await stackWith({ redis: { url: proxy.url, keyPrefix: 'gwfailover3:' } });
    const profile = (index: number) => stack.gql<AnyData>(`query($id: ID!) { user(id: $id) { id name } }`, { id: stack.userId(index) });
    const cachedOn = async (client: Redis, index: number) => (await client.keys(`gwfailover3:c:identity.user*${stack.userId(index)}*`)).length;
    expect((await profile(400)).body.errors).toBeUndefined();
    await expect.poll(() => cachedOn(admin.old, 400), { timeout: 3000 }).toBe(1);
    expect((await stack.gql<AnyData>(UPDATE, { input: { userId: stack.userId(401), nickname: 'before-failover' } })).body.data!.updateProfile.status).toBe('COMPLETE');

    await failOver();
    // The first writes on each connection are refused and open it again; each such request still answers (L1, memory).
    for (const index of [402, 403, 404]) expect((await profile(index)).body.errors).toBeUndefined();
    expect((await stack.gql<AnyData>(UPDATE, { input: { userId: stack.userId(405), nickname: 'during-failover' } })).body.data!.updateProfile.status).toBe('COMPLETE');
    await new Promise((r) => setTimeout(r, 1200));

    expect((await profile(406)).body.errors).toBeUndefined();
    await expect.poll(() => cachedOn(admin.new, 406), { timeout: 3000 }).toBe(1);
    // A delivery whose first attempt fails is queued on the new primary, and its worker there retries it.
    await stack.faults('audit', { errorRate: 1, errorCount: 1 });
    const res = await stack.gql<AnyData>(UPDATE, { input: { userId: stack.userId(407), nickname: 'after-failover' } });
    const audit = (res.body.data!.updateProfile.deliveries as AnyData[]).find((d) => d.target === 'AUDIT')!;
    expect(audit.state).toBe('QUEUED');
    expect(await admin.new.exists(`gwfailover3:bull:deliveries:${audit.id}`)).toBe(1);
    await expect.poll(async () => await admin.new.hget(`gwfailover3:bull:deliveries:${audit.id}`, 'finishedOn'), { timeout: 10_000 }).not.toBeNull();
    const lines = stack.logs.map((l) => JSON.parse(l) as AnyData);
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
    expect(lines.filter((l) => String(l.msg).startsWith('Redis answered as a read-only replica'))).toHaveLength(1);
    // The queue's connection met the old primary too: its refused job went again once it reached the new one, not to memory.
    expect(lines.filter((l) => String(l.msg).startsWith('Durable delivery queue unavailable'))).toEqual([]);
  });
});
