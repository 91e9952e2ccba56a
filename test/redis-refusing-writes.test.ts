import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { RedisConnection } from '../src/redis.js';
import { loggedLines } from './helpers/log-lines.js';
import { describeWithRedis, TestRedis } from './helpers/redis.js';
import { stackPool } from './helpers/stack.js';

/**
 * A Redis that answers reads and refuses writes: full (`maxmemory` reached under `noeviction`, the policy bullmq
 * needs: "OOM command not allowed") or unable to save (`MISCONF`, a full disk under stop-writes-on-bgsave-error).
 * The connection is fine and every caller fell back quietly (L2 kept nothing, rate limits went local, deliveries
 * stayed in memory): only a write's own line said anything, and only on a write. Now the main connection says it.
 */
type AnyData = Record<string, any>;

describeWithRedis('a Redis that refuses writes', () => {
  const redis = new TestRedis();
  let admin: Redis;
  beforeAll(async () => {
    await redis.start('--maxmemory-policy', 'noeviction');
    admin = new Redis(redis.url);
  });
  afterAll(async () => {
    admin.disconnect();
    await redis.stop();
  });

  /** Redis full: its maxmemory set under what it holds (under `noeviction`); the returned function gives it room again. */
  async function fill(): Promise<() => Promise<void>> {
    await admin.config('SET', 'maxmemory', '1');
    return async () => {
      await admin.config('SET', 'maxmemory', '0');
    };
  }

  it('out of memory: queries and writes still answer, and one warn line says why Redis keeps nothing', async () => {
    const stack = await stackPool((o) => ({ ...o, cache: { enabled: true } }))({ redis: { url: redis.url, keyPrefix: 'gwfull:' } });
    const free = await fill();
    try {
      for (let i = 0; i < 10; i++) {
        const res = await stack.gql<AnyData>(`query($id: ID!) { user(id: $id) { id metrics { pageViews } notifications(first: 3) { totalCount } } }`, {
          id: stack.userId(500 + i),
        });
        expect(res.body.errors).toBeUndefined();
      }
      const write = await stack.gql<AnyData>(`mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { status } }`, {
        input: { userId: stack.userId(520), nickname: 'full' },
      });
      expect(write.body.data!.updateProfile.status).toBe('COMPLETE');
      // L2 kept none of the users read while Redis was full.
      const kept = await admin.keys('gwfull:c:*');
      expect(kept.filter((key) => Array.from({ length: 10 }, (_, i) => stack.userId(500 + i)).some((id) => key.includes(id)))).toEqual([]);
      const refused = stack.logs.map((l) => JSON.parse(l) as AnyData).filter((l) => String(l.msg).startsWith('Redis refuses writes'));
      expect(refused).toHaveLength(1);
      expect(refused[0]).toMatchObject({ level: 40, err: expect.stringMatching(/^OOM command not allowed/) });
      // /readyz names it (200: degraded is not down), and the sources' rate limits say LOCAL, as they are.
      const ready = await fetch(stack.url.replace('/graphql', '/readyz'));
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ status: 'degraded', redis: 'refusing writes', degraded: [expect.stringMatching(/^redis: refusing writes/)] });
      const limiters = await stack.gql<AnyData>(`{ sources { name rateLimiter } }`);
      expect(new Set((limiters.body.data!.sources as AnyData[]).map((s) => s.rateLimiter))).toEqual(new Set(['LOCAL']));
      // noeviction is what this server wants: not named.
      expect(stack.logs.filter((l) => l.includes('Redis evicts any key'))).toEqual([]);
    } finally {
      await free();
    }
    // Room again: L2 keeps entries.
    await stack.gql<AnyData>(`query($id: ID!) { user(id: $id) { id } }`, { id: stack.userId(530) });
    await expect.poll(async () => (await admin.keys(`gwfull:c:identity.user*${stack.userId(530)}*`)).length, { timeout: 3000 }).toBe(1);
  });

  it('unable to save (MISCONF: a full disk under stop-writes-on-bgsave-error): five writes refused, one line; reads answer; writes again once it saves', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'gw-misconf-'));
    const saving = new TestRedis();
    await saving.start('--dir', folder, '--enable-protected-configs', 'yes');
    const control = new Redis(saving.url);
    const { logger, lines } = loggedLines('info');
    const connection = new RedisConnection({ url: saving.url, keyPrefix: 'gwmisconf:' }, logger);
    try {
      await expect.poll(() => connection.available, { timeout: 3000 }).toBe(true);
      await connection.client.set(connection.key('before'), 'v');
      // Its snapshot cannot be written: the file's name is taken by a folder that is not empty.
      await mkdir(join(folder, 'blocked.rdb', 'taken'), { recursive: true });
      await control.config('SET', 'dbfilename', 'blocked.rdb');
      await control.config('SET', 'save', '3600 1');
      await control.bgsave();
      await expect.poll(async () => /rdb_last_bgsave_status:err/.test(await control.info('persistence')), { timeout: 5000 }).toBe(true);
      for (let i = 0; i < 5; i++) await expect(connection.client.set(connection.key(`k${i}`), 'v')).rejects.toThrow(/^MISCONF/);
      expect(await connection.client.get(connection.key('before'))).toBe('v');
      const refused = lines.filter((l) => l.msg.startsWith('Redis refuses writes'));
      expect(refused).toHaveLength(1);
      expect(refused[0]).toMatchObject({ level: 40, err: expect.stringMatching(/^MISCONF/) });
      await control.config('SET', 'dbfilename', 'dump.rdb');
      await control.bgsave();
      await expect.poll(() => connection.client.set(connection.key('after'), 'v').catch((e: Error) => e.message), { timeout: 5000 }).toBe('OK');
    } finally {
      await connection.close();
      control.disconnect();
      await saving.stop();
      await rm(folder, { recursive: true, force: true });
    }
  });

  it('a Redis that evicts any key (allkeys-lru) or any that expires (volatile-lru) when full is named at start, once; noeviction is not', async () => {
    const evicting = [new TestRedis(), new TestRedis()];
    await Promise.all([evicting[0]!.start('--maxmemory-policy', 'allkeys-lru'), evicting[1]!.start('--maxmemory-policy', 'volatile-lru')]);
    const { logger, lines } = loggedLines('info');
    const quiet = loggedLines('info');
    const connections = [
      ...evicting.map((server, i) => new RedisConnection({ url: server.url, keyPrefix: `gwevict${i}:` }, logger)),
      new RedisConnection({ url: redis.url, keyPrefix: 'gwnoevict:' }, quiet.logger),
    ];
    const evictionLines = (from: typeof lines) => from.filter((l) => l.msg.startsWith('Redis evicts')).map((l) => `${l.maxmemoryPolicy} ${l.msg.split(' (')[0]}`);
    try {
      await expect
        .poll(() => evictionLines(lines).toSorted(), { timeout: 3000 })
        .toEqual(['allkeys-lru Redis evicts any key when full', 'volatile-lru Redis evicts keys that expire when full']);
      await expect.poll(() => connections.every((c) => c.available), { timeout: 3000 }).toBe(true);
      expect(evictionLines(quiet.lines)).toEqual([]);
    } finally {
      await Promise.all(connections.map((c) => c.close()));
      await Promise.all(evicting.map((server) => server.stop()));
    }
  });

  it('a Redis that keeps nothing on disk (no save schedule, AOF off) is named at start, once; one with AOF or a save schedule is not', async () => {
    const servers = [new TestRedis(), new TestRedis(), new TestRedis()];
    await Promise.all([servers[0]!.start('--save', ''), servers[1]!.start('--save', '', '--appendonly', 'yes'), servers[2]!.start('--save', '3600 1')]);
    const watched = servers.map((server, i) => ({ server, ...loggedLines('info'), prefix: `gwdisk${i}:` }));
    const connections = watched.map((w) => new RedisConnection({ url: w.server.url, keyPrefix: w.prefix }, w.logger));
    const saidOf = (i: number) => watched[i]!.lines.filter((l) => l.msg.startsWith('Redis keeps nothing on disk'));
    try {
      await expect.poll(() => saidOf(0).length, { timeout: 3000 }).toBe(1);
      expect(saidOf(0)[0]).toMatchObject({ level: 40, redis: servers[0]!.url });
      await expect.poll(() => connections.every((c) => c.available), { timeout: 3000 }).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect([saidOf(1).length, saidOf(2).length]).toEqual([0, 0]);
    } finally {
      await Promise.all(connections.map((c) => c.close()));
      await Promise.all(servers.map((server) => server.stop()));
    }
  });
});

describeWithRedis('a Redis that takes no more connections (its maxclients reached)', () => {
  const redis = new TestRedis();
  let admin: Redis;
  beforeAll(async () => {
    await redis.start();
    admin = new Redis(redis.url);
  });
  afterAll(async () => {
    await admin.config('SET', 'maxclients', '10000');
    admin.disconnect();
    await redis.stop();
  });

  it("a write whose delivery queue's connection Redis never took answers at once, its delivery kept in memory; the full house is named", async () => {
    // Full from the start but for one: the server's first connection (its main one) gets in, the rest never do.
    await admin.config('SET', 'maxclients', '2');
    const stack = await stackPool()({ redis: { url: redis.url, keyPrefix: 'gwfullhouse:' } });
    const clients = (await admin.client('LIST')) as string;
    expect(clients).toMatch(/ name=gateway:main /);
    expect(clients).not.toMatch(/ name=gateway:deliveries /);

    const started = performance.now();
    const res = await stack.gql<AnyData>(`mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { status deliveries { target state } } }`, {
      input: { userId: stack.userId(540), nickname: 'full house' },
    });
    // Before: bullmq waited for the connection to open, without end, and so did the write.
    expect(performance.now() - started).toBeLessThan(3000);
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data!.updateProfile).toEqual({ status: 'COMPLETE', deliveries: [expect.objectContaining({ state: 'DELIVERED' }), { target: 'AUDIT', state: 'DELIVERED' }] });
    const kept = stack.logs.filter((l) => l.includes("the delivery queue's connection to Redis is not open"));
    expect(kept.length).toBeGreaterThan(0);
    // And why, once: Redis has as many clients as it allows.
    const fullHouse = () => stack.logs.map((l) => JSON.parse(l) as AnyData).filter((l) => String(l.msg).startsWith('Redis takes no more connections'));
    await expect.poll(() => fullHouse().length, { timeout: 4000 }).toBe(1);
    expect(fullHouse()[0]).toMatchObject({ level: 40, connectedClients: 2, maxclients: 2 });
    await admin.config('SET', 'maxclients', '10000');
  });
});
