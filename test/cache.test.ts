import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import diagnostics from 'node:diagnostics_channel';
import { Redis } from 'ioredis';
import { entryWeight, MemoryTier, WINDOW_SHARE } from '../src/cache/memory-tier.js';
import { makeEntry } from '../src/cache/entry.js';
import { Deadline } from '../src/resilience/deadline.js';
import { approximateJsonLength } from '../src/cache/json-size.js';
import { RedisTier } from '../src/cache/redis-tier.js';
import { RedisConnection } from '../src/redis.js';
import { createLogger } from '../src/logger.js';
import { exposedGc } from './helpers/heap.js';
import { userCache } from './helpers/user-cache.js';
import { describeWithRedis, TestRedis } from './helpers/redis.js';
import { expectTierWrites } from './helpers/tier-writes.js';
import { calls, everyEntity as entities, READ_ROUTES, stackPool, type Stack } from './helpers/stack.js';

/**
 * The two cache tiers, seen from outside: upstream calls counted by the
 * simulated upstreams' stats, staleness read from `extensions.stale`, faults
 * set through the admin endpoint, Redis a real server the test starts and stops.
 */
type AnyData = Record<string, any>;

const { search: SEARCH, metrics: METRICS, unread: UNREAD, notificationList: LIST } = READ_ROUTES;

const DASHBOARD = `query($id: ID!) {
  user(id: $id) {
    id name email
    metrics { pageViews sessions }
    unreadNotificationCount
    notifications(first: 5) { totalCount edges { node { id title } } }
  }
}`;

const stackWith = stackPool((options) => ({ ...options, cache: { enabled: true, ...options.cache } }));

/** Upstream calls per data route, summed over the three read sources. */
async function upstreamCalls(stack: Stack): Promise<Record<string, number>> {
  const [identity, analytics, notifications] = await Promise.all([stack.stats('identity'), stack.stats('analytics'), stack.stats('notifications')]);
  return { search: calls(identity, SEARCH), metrics: calls(analytics, METRICS), unread: calls(notifications, UNREAD), list: calls(notifications, LIST) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a wall clock stepped back an hour (NTP correcting a clock that ran ahead, a VM restored)', () => {
  afterEach(() => vi.useRealTimers());

  it('what was cached before the step is fetched again, not served as fresh for the hour (entries and kept responses)', async () => {
    const stack = await stackWith({});
    const id = stack.userId(640);
    const first = await stack.gql<AnyData>(DASHBOARD, { id });
    expect(first.body.errors).toBeUndefined();
    // Again: the entries (and a kept response, on its second ask) answer it.
    await stack.gql<AnyData>(DASHBOARD, { id });
    await stack.gql<AnyData>(DASHBOARD, { id });
    expect(await upstreamCalls(stack)).toEqual({ search: 1, metrics: 1, unread: 1, list: 1 });
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() - 3_600_000);
    // Before, every entry's times kept it fresh for the hour: the same answer, whatever the vendors had since.
    const after = await stack.gql<AnyData>(DASHBOARD, { id });
    expect(after.body.errors).toBeUndefined();
    expect(after.body.data).toEqual(first.body.data);
    expect(await upstreamCalls(stack)).toEqual({ search: 2, metrics: 2, unread: 2, list: 2 });
    // Stored again on the new clock: cached as usual.
    await stack.gql<AnyData>(DASHBOARD, { id });
    expect(await upstreamCalls(stack)).toEqual({ search: 2, metrics: 2, unread: 2, list: 2 });
  });

  it('an entry from before the step is still the answer while its vendor fails', async () => {
    const stack = await stackWith({ tuning: { analytics: { retryMaxAttempts: 1, breakerMinCalls: 1000 } } });
    const id = stack.userId(641);
    // A range of its own: the default one ends with the current hour, which the step moves (another key).
    const q = `query($id: ID!) { user(id: $id) { metrics(from: "2026-11-01T00:00:00Z", to: "2026-12-01T00:00:00Z") { pageViews } } }`;
    const fresh = await stack.gql<AnyData>(q, { id });
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() - 3_600_000);
    await stack.faults('analytics', { errorRate: 1 });
    const failing = await stack.gql<AnyData>(q, { id });
    expect(failing.body.data).toEqual(fresh.body.data);
    expect(failing.body.extensions!.stale).toContainEqual(expect.objectContaining({ path: ['user', 'metrics'], source: 'analytics', reason: 'SOURCE_ERROR' }));
    await stack.reset();
  });
});

describe('L1: entries per entity', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await stackWith({});
  });
  afterEach(() => stack.reset());

  it('a repeated dashboard is answered from the cache: no second upstream call', async () => {
    const id = stack.userId(10);
    const first = await stack.gql<AnyData>(DASHBOARD, { id });
    expect(first.body.errors).toBeUndefined();
    expect(await upstreamCalls(stack)).toEqual({ search: 1, metrics: 1, unread: 1, list: 1 });
    const second = await stack.gql<AnyData>(DASHBOARD, { id });
    expect(second.body.data).toEqual(first.body.data);
    expect(second.body.extensions?.stale).toBeUndefined();
    expect(await upstreamCalls(stack)).toEqual({ search: 1, metrics: 1, unread: 1, list: 1 });
  });

  it('a list fills the per-user entries that a single-user query then hits', async () => {
    const list = await stack.gql<AnyData>(`{ userList(first: 10, after: null) { edges { node { id name } } } }`);
    const third = list.body.data!.userList.edges[2].node;
    expect(calls(await stack.stats('identity'), SEARCH)).toBe(1); // the list page itself
    const one = await stack.gql<AnyData>(`query($id: ID!) { user(id: $id) { id name } }`, { id: third.id });
    expect(one.body.data!.user).toEqual(third);
    expect(calls(await stack.stats('identity'), SEARCH)).toBe(1);
  });

  it('a batch asks upstream only for the ids it lacks', async () => {
    const ids = [20, 21, 22, 23, 24, 25].map((i) => stack.userId(i));
    await stack.gql(`query($ids: [ID!]!) { users(ids: $ids) { id unreadNotificationCount } }`, { ids: ids.slice(0, 4) });
    const res = await stack.gql<AnyData>(`query($ids: [ID!]!) { users(ids: $ids) { id unreadNotificationCount } }`, { ids });
    expect(res.body.data!.users.map((u: AnyData) => u.id)).toEqual(ids);
    const identity = (await stack.stats('identity')).routes[SEARCH]!;
    const unread = (await stack.stats('notifications')).routes[UNREAD]!;
    expect(identity.batchSizes).toEqual([4, 2]);
    expect(unread.batchSizes).toEqual([4, 2]);
  });

  it('unknown ids are remembered as unknown for a while (negative entries)', async () => {
    await stack.gql(`{ user(id: "nobody-here") { id } }`);
    const again = await stack.gql<AnyData>(`{ user(id: "nobody-here") { id } }`);
    expect(again.body.data!.user).toBeNull();
    expect(calls(await stack.stats('identity'), SEARCH)).toBe(1);
  });

  it('a user analytics has never seen: metrics null without an error, from the cache too', async () => {
    const id = stack.userId(49); // one in fifty users has no analytics
    const q = `query($id: ID!) { user(id: $id) { id metrics { pageViews } } }`;
    for (let i = 0; i < 2; i++) {
      const res = await stack.gql<AnyData>(q, { id });
      expect(res.body.errors).toBeUndefined();
      expect(res.body.data!.user).toEqual({ id, metrics: null });
    }
    expect(calls(await stack.stats('analytics'), METRICS)).toBe(1);
  });

  it("L1 without L2 sizes entries close to their JSON's length, without making it", () => {
    const policy = { ttlMs: 60_000, staleWhileRevalidateMs: 0, staleIfErrorMs: 0 };
    const day = (i: number) => new Date(Date.UTC(2026, 8, 1 + i)).toISOString();
    const values: unknown[] = [
      {
        id: 'auth0|fc877dd7b7fbea1c8bb0226b',
        email: 'katherine.ritchie.0@example.com',
        emailVerified: true,
        name: 'Katherine Ritchie',
        nickname: 'kat',
        avatarUrl: null,
        createdAt: day(0),
        lastLoginAt: day(3),
      },
      {
        pageViews: 620,
        sessions: 112,
        avgSessionSeconds: 184.5,
        conversionRate: 0.0991,
        lastActiveAt: day(17),
        series: Array.from({ length: 30 }, (_, i) => ({ at: day(i), pageViews: 20 + i, sessions: i % 7 })),
      },
      {
        items: Array.from({ length: 5 }, (_, i) => ({
          id: `n${i}`,
          userId: 'u1',
          title: 'Reminder: finish setup',
          body: 'You are two steps away.',
          channel: 'IN_APP',
          read: i % 2 === 0,
          createdAt: day(i),
        })),
        totalCount: 60,
        hasNextPage: true,
      },
      8,
      null,
    ];
    for (const value of values) {
      const entry = makeEntry(value, policy, 30_000);
      const exact = JSON.stringify(entry).length;
      const estimate = approximateJsonLength(entry);
      expect(Math.abs(estimate - exact) / exact, JSON.stringify(value).slice(0, 40)).toBeLessThan(0.25);
    }
  });

  // Keys k100–k999 all have 4 characters, so every entry weighs the same: room for `main` of them in the main
  // part and `window` more in the window.
  const weight = entryWeight('k999', 100);
  const bound = 100 * weight;
  const windowBytes = Math.floor(bound * WINDOW_SHARE);
  const main = Math.floor((bound - windowBytes) / weight);
  const window = Math.floor(windowBytes / weight);
  const policy = { ttlMs: 60_000, staleWhileRevalidateMs: 0, staleIfErrorMs: 0 };

  it('L1 stays within its byte bound and drops a group whole', () => {
    const tier = new MemoryTier(bound);
    // Each key offered twice: once the tier is full, a new key is kept from its second offer.
    for (let i = 100; i < 1000; i++) for (const _ of [1, 2]) tier.set(`k${i}`, `g${i % 10}`, makeEntry({ i }, policy, 0), 100);
    expect(tier.bytes).toBeLessThanOrEqual(bound);
    expect(tier.size).toBe(main);
    const kept = Array.from({ length: main }, (_, j) => 1000 - main + j);
    expect(tier.deleteGroup('g3')).toBe(kept.filter((i) => i % 10 === 3).length);
    expect(tier.size).toBe(main - kept.filter((i) => i % 10 === 3).length);
    expect(tier.get('k993')).toBeUndefined();
    expect(tier.get('k994')).toBeDefined();
  });

  it("L1 drops a group's only key (`${group}\\0`, not indexed) with its other keys, in the main part and the window", () => {
    const tier = new MemoryTier(bound);
    const only = makeEntry({ profile: 1 }, policy, 0);
    tier.set('g1\u0000', 'g1', only, 100);
    tier.set('g1\u0000range', 'g1', makeEntry({ range: 1 }, policy, 0), 100);
    tier.set('g10\u0000', 'g10', makeEntry({ other: 1 }, policy, 0), 100); // another group whose name starts the same
    expect(tier.deleteGroup('g1')).toBe(2);
    expect([tier.get('g1\u0000'), tier.get('g1\u0000range'), tier.holds(only)]).toEqual([undefined, undefined, false]);
    expect(tier.get('g10\u0000')?.value).toEqual({ other: 1 });
    expect(tier.deleteGroup('g1')).toBe(0);
    // Full: a group's only key offered once waits in the window, and a write drops it there too.
    const fits = Math.floor((bound - windowBytes) / entryWeight('k100\u0000', 100));
    for (let i = 100; i < 100 + fits; i++) tier.set(`k${i}\u0000`, `k${i}`, makeEntry({ i }, policy, 0), 100);
    tier.set('k999\u0000', 'k999', makeEntry({ late: 1 }, policy, 0), 100);
    expect(tier.size).toBe(fits + 2);
    expect(tier.deleteGroup('k999')).toBe(1);
    expect(tier.get('k999\u0000')).toBeUndefined();
    expect(tier.deleteGroup('k150')).toBe(1);
    expect(tier.size).toBe(fits);
  });

  it('L1 keeps nothing, and indexes nothing, of an entry heavier than its main part or, once full, than its window', () => {
    const tier = new MemoryTier(bound);
    // Heavier than the main part; offered twice, so that the second offer is admitted to it (see MemoryTier.admits).
    for (const _ of [1, 2]) tier.set('k100\u0001a', 'g100', makeEntry({ huge: 1 }, policy, 0), bound);
    expect([tier.size, tier.bytes, tier.deleteGroup('g100')]).toEqual([0, 0, 0]);
    for (let i = 100; i < 100 + main; i++) tier.set(`k${i}`, `g${i}`, makeEntry({ i }, policy, 0), 100);
    tier.set('k999\u0001a', 'g999', makeEntry({ big: 1 }, policy, 0), windowBytes); // full: offered once, too heavy for the window
    expect(tier.size).toBe(main);
    expect(tier.deleteGroup('g999')).toBe(0);
    tier.set('k999\u0001b', 'g999', makeEntry({ small: 1 }, policy, 0), 100); // the same group, light enough for the window
    expect(tier.deleteGroup('g999')).toBe(1);
  });

  it("L1 reuses its options to lru-cache, yet a subscriber to lru-cache's diagnostics gets a status of its own per call", () => {
    const tier = new MemoryTier(bound);
    tier.set('k100', 'g100', makeEntry({ i: 100 }, policy, 0), 100);
    const seen: Array<{ op?: string; key?: unknown; value?: unknown }> = [];
    const listener = (status: unknown) => seen.push(status as (typeof seen)[number]);
    diagnostics.subscribe('lru-cache:metrics', listener);
    try {
      tier.get('k100');
      tier.get('k101');
      tier.set('k102', 'g102', makeEntry({ i: 102 }, policy, 0), 100);
    } finally {
      diagnostics.unsubscribe('lru-cache:metrics', listener);
    }
    const reads = seen.filter((s) => s.op === 'get');
    expect(reads.map((s) => s.key)).toEqual(['k100', 'k101']);
    expect(reads[0]).not.toBe(reads[1]);
    expect(reads[1]!.value).toBeUndefined(); // a miss: nothing carried over from the hit before it
    expect(seen.filter((s) => s.op === 'set').map((s) => s.key)).toEqual(['k102']);
    expect(tier.get('k102')?.value).toEqual({ i: 102 }); // and without a subscriber, reads still work
  });

  it('L1, once full, keeps a new key from its second offer or its first read: keys asked once do not evict what is read', () => {
    const tier = new MemoryTier(bound);
    const offered = new Map<number, ReturnType<typeof makeEntry>>();
    const offer = (i: number) => {
      offered.set(i, makeEntry({ i }, policy, 0));
      tier.set(`k${i}`, `g${i}`, offered.get(i)!, 100);
    };
    const first = Array.from({ length: main }, (_, j) => 100 + j);
    for (const i of first) offer(i); // room for all: each kept from its first fetch
    expect(tier.size).toBe(main);
    for (let i = 200; i < 1000; i++) offer(i); // a flood of keys asked once: they pass through the window
    expect(window).toBeGreaterThan(1);
    expect(tier.size).toBe(main + window);
    expect(tier.bytes).toBeLessThanOrEqual(bound);
    expect(first.every((i) => tier.get(`k${i}`) !== undefined)).toBe(true); // k100 is now the least recently used
    expect(tier.get(`k${999 - window}`)).toBeUndefined(); // pushed out of the window…
    expect(tier.holds(offered.get(999 - window)!)).toBe(false); // …and retired: no response stands on it
    // A user's second request soon after the first: read in the window, it moves into the main part as it is.
    const waiting = tier.get('k999')!;
    expect(waiting.value).toEqual({ i: 999 });
    expect(tier.holds(waiting)).toBe(true);
    expect(tier.get('k100')).toBeUndefined(); // its place
    for (let i = 1000; i < 1000 + 2 * window; i++) offer(i); // the window turns over…
    expect(tier.get('k999')).toBe(waiting); // …and k999 stays
    expect(tier.holds(waiting)).toBe(true);
    offer(500); // asked again after the window lost it: kept, in place of the least recently used
    expect(tier.get('k500')).toBeDefined();
    expect(tier.get('k101')).toBeUndefined();
    offer(150); // a key the tier holds is always replaced
    expect(tier.size).toBe(main + window);
    expect(tier.deleteGroup(`g${1000 + 2 * window - 1}`)).toBe(1); // a write drops what waits in the window too
    expect(tier.get(`k${1000 + 2 * window - 1}`)).toBeUndefined();
    const inWindow = offered.get(1000 + 2 * window - 2)!;
    expect(tier.holds(inWindow)).toBe(true);
    tier.clear();
    expect([tier.holds(inWindow), tier.holds(waiting), tier.size]).toEqual([false, false, 0]);
  });

  it('L1 full of unknown ids weighs about its bound in the heap, not 8× it', async () => {
    // A "no such entity" is ~100 bytes of JSON but ~800 in the heap, and a client can make any number of them.
    const bound = 8 * 1024 * 1024;
    const l1 = new MemoryTier(bound);
    const users = userCache<null>(async (ids) => ids.map(() => null), l1);
    // Its code compiled and its structures made before weighing.
    await users.getMany(['warm-up'], Deadline.after(5_000));
    const gc = exposedGc();
    gc();
    const before = process.memoryUsage().heapUsed;
    // 100,000 ids: counted by their JSON alone, ~84,000 of them would fit.
    for (let batch = 0; batch < 200; batch++) {
      const ids = Array.from({ length: 500 }, (_, i) => `auth0|${(batch * 500 + i).toString(16).padStart(24, '0')}`);
      await users.getMany(ids, Deadline.after(5_000));
    }
    gc();
    const grown = process.memoryUsage().heapUsed - before;
    expect(l1.bytes).toBeLessThanOrEqual(bound);
    expect(l1.size).toBeGreaterThan(5_000);
    // Measured here (vitest's transformed code, its worker alive): ~1.1 with the bookkeeping counted, 8.4 without,
    // 1.8 while each group's only key was indexed (a Set, two map entries and the group string, ~570 bytes an
    // entry; bench/RESULTS.md, session 12).
    expect(grown / bound).toBeLessThan(1.4);
  });
});

describe('single-flight', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await stackWith({});
  });

  it('100 concurrent identical dashboard queries make 1 call per source', async () => {
    // Slow enough that all 100 arrive while the first calls are in flight.
    for (const name of ['identity', 'analytics', 'notifications'] as const) await stack.faults(name, { latencyMs: 300 });
    const id = stack.userId(30);
    const answers = await Promise.all(Array.from({ length: 100 }, () => stack.gql<AnyData>(DASHBOARD, { id })));
    for (const a of answers) {
      expect(a.body.errors).toBeUndefined();
      expect(a.body.data!.user.id).toBe(id);
    }
    expect(await upstreamCalls(stack)).toEqual({ search: 1, metrics: 1, unread: 1, list: 1 });
  });
});

describe('cross-request batching', () => {
  let stack: Stack;
  beforeAll(async () => {
    // A window wide enough for all of this test's requests (client and server share one event loop here, which the
    // suite's other files on the same two cores now and then hold for a few hundred ms: 100 ms made 3 and 5 batches).
    stack = await stackWith({ cache: { batchWindowMs: 400 } });
  });
  afterEach(() => stack.reset());

  it('concurrent requests for different users share upstream batches; each user is fetched once', async () => {
    const ids = Array.from({ length: 20 }, (_, i) => stack.userId(40 + i));
    const answers = await Promise.all(ids.map((id) => stack.gql<AnyData>(DASHBOARD, { id })));
    expect(answers.map((a) => a.body.data?.user?.id)).toEqual(ids);
    const identity = (await stack.stats('identity')).routes[SEARCH]!;
    const unread = (await stack.stats('notifications')).routes[UNREAD]!;
    const metrics = (await stack.stats('analytics')).routes[METRICS]!;
    for (const route of [identity, unread, metrics]) {
      // One call per request would be 20 calls of 1 id.
      expect(route.batchSizes.reduce((a, b) => a + b, 0)).toBe(20);
      expect(route.calls).toBeLessThanOrEqual(3);
    }
    // Notification pages have no batch endpoint: one call per user.
    expect(calls(await stack.stats('notifications'), LIST)).toBe(20);
  });
});

describe('stale-while-revalidate', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await stackWith({ cache: { entities: entities({ ttlMs: 1000, staleWhileRevalidateMs: 60_000, staleIfErrorMs: 0 }) } });
  });

  it('past the TTL, the entry is served at once (and said so) while exactly one refresh runs', async () => {
    const id = stack.userId(40);
    await stack.gql(DASHBOARD, { id });
    await stack.reset();
    await sleep(1100);
    // The refresh takes 800 ms (under the 1 s per-attempt timeout): all 20 answers are served before it lands, even
    // on a loaded machine (at 300 ms, under a full suite's load, a late one saw the refreshed metrics, not stale ones).
    for (const name of ['identity', 'analytics', 'notifications'] as const) await stack.faults(name, { latencyMs: 800 });
    const started = Date.now();
    const answers = await Promise.all(Array.from({ length: 20 }, () => stack.gql<AnyData>(DASHBOARD, { id })));
    // Served without waiting for the refresh.
    expect(Date.now() - started).toBeLessThan(750);
    for (const a of answers) {
      expect(a.body.errors).toBeUndefined();
      expect(a.body.data!.user.metrics.pageViews).toEqual(expect.any(Number));
      const stale = a.body.extensions!.stale as AnyData[];
      expect(stale).toContainEqual({ path: ['user', 'metrics'], source: 'analytics', reason: 'REVALIDATING', ageSeconds: expect.any(Number) });
      expect(stale).toContainEqual(expect.objectContaining({ path: ['user'], source: 'identity', reason: 'REVALIDATING' }));
    }
    // Once the refresh has landed, answers are fresh again; asking meanwhile starts no second refresh.
    await expect.poll(async () => (await stack.gql<AnyData>(DASHBOARD, { id })).body.extensions?.stale, { timeout: 5000 }).toBeUndefined();
    expect(await upstreamCalls(stack)).toEqual({ search: 1, metrics: 1, unread: 1, list: 1 });
  });
});

describe('stale-while-revalidate when the refresh fails', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await stackWith({ cache: { entities: entities({ ttlMs: 300, staleWhileRevalidateMs: 60_000, staleIfErrorMs: 0 }) }, tuning: { analytics: { retryMaxAttempts: 1 } } });
  });

  it('answers keep coming from the entry, and say the source is failing once a refresh has failed', async () => {
    const id = stack.userId(45);
    const q = `query($id: ID!) { user(id: $id) { metrics { pageViews } } }`;
    const fresh = await stack.gql<AnyData>(q, { id });
    await sleep(400);
    await stack.faults('analytics', { errorRate: 1 });
    const first = await stack.gql<AnyData>(q, { id });
    expect(first.body.data).toEqual(fresh.body.data);
    expect(first.body.extensions!.stale).toContainEqual(expect.objectContaining({ path: ['user', 'metrics'], reason: 'REVALIDATING' }));
    await expect
      .poll(async () => ((await stack.gql<AnyData>(q, { id })).body.extensions!.stale as AnyData[]).find((s) => s.source === 'analytics'))
      .toMatchObject({ reason: 'SOURCE_ERROR', code: 'SOURCE_UNAVAILABLE' });
    await stack.reset();
    await expect.poll(async () => (await stack.gql<AnyData>(q, { id })).body.extensions?.stale, { timeout: 5000 }).toBeUndefined();
  });
});

describe('stale-if-error', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await stackWith({
      cache: { entities: entities({ ttlMs: 200, staleWhileRevalidateMs: 0, staleIfErrorMs: 60_000 }) },
      tuning: { analytics: { retryMaxAttempts: 1, breakerMinCalls: 1000 } },
      requestDeadlineMs: 1500,
    });
  });
  afterEach(() => stack.reset());

  const METRICS_ONLY = `query($id: ID!) { user(id: $id) { name metrics { pageViews } } }`;

  async function cachedThenFailing(index: number, fault: Parameters<Stack['faults']>[1]): Promise<{ fresh: AnyData; res: AnyData }> {
    const id = stack.userId(index);
    const fresh = (await stack.gql<AnyData>(METRICS_ONLY, { id })).body;
    expect(fresh.errors).toBeUndefined();
    await sleep(300);
    await stack.faults('analytics', fault);
    const res = (await stack.gql<AnyData>(METRICS_ONLY, { id })).body as AnyData;
    return { fresh, res };
  }

  it.each([
    ['the source answers 503', { errorRate: 1, errorStatus: 503 }, 'SOURCE_UNAVAILABLE'],
    ['the source drops connections', { down: 'reset' as const }, 'SOURCE_UNAVAILABLE'],
    ['the source hangs past the deadline', { down: 'hang' as const }, 'SOURCE_TIMEOUT'],
    ['the source rate-limits', { errorRate: 1, errorStatus: 429 }, 'SOURCE_RATE_LIMITED'],
    ['the source answers garbage', { malformedRate: 1 }, 'SOURCE_BAD_RESPONSE'],
  ])('%s: the stale entry is served, named in extensions.stale with its age and the failure', async (_what, fault, code) => {
    const { fresh, res } = await cachedThenFailing(50 + Object.keys(fault).length + code.length, fault);
    expect(res.errors).toBeUndefined();
    expect(res.data.user.metrics).toEqual(fresh.data.user.metrics);
    expect(res.extensions.stale).toContainEqual({ path: ['user', 'metrics'], source: 'analytics', reason: 'SOURCE_ERROR', code, ageSeconds: expect.any(Number) });
    expect(res.extensions.stale[0].ageSeconds).toBeLessThan(5);
  });

  it('the breaker is open: the stale entry is served without an upstream call', async () => {
    const breaking = await stackWith({
      cache: { entities: entities({ ttlMs: 200, staleWhileRevalidateMs: 0, staleIfErrorMs: 60_000 }) },
      tuning: { analytics: { retryMaxAttempts: 1, breakerMinCalls: 2, breakerFailureRatio: 0.5, breakerHalfOpenAfterMs: 60_000 } },
    });
    const id = breaking.userId(70);
    await breaking.gql(METRICS_ONLY, { id });
    await breaking.faults('analytics', { errorRate: 1 });
    // Open it with other users' failures.
    for (const i of [71, 72, 73]) await breaking.gql(METRICS_ONLY, { id: breaking.userId(i) });
    await sleep(300);
    const before = calls(await breaking.stats('analytics'), METRICS);
    const res = (await breaking.gql<AnyData>(METRICS_ONLY, { id })).body as AnyData;
    expect(calls(await breaking.stats('analytics'), METRICS)).toBe(before);
    expect(res.errors).toBeUndefined();
    expect(res.extensions.stale).toContainEqual(expect.objectContaining({ path: ['user', 'metrics'], code: 'SOURCE_CIRCUIT_OPEN', reason: 'SOURCE_ERROR' }));
  });

  it('without a cached entry, the failure is an error as before', async () => {
    await stack.faults('analytics', { errorRate: 1 });
    const res = (await stack.gql<AnyData>(METRICS_ONLY, { id: stack.userId(80) })).body as AnyData;
    expect(res.data.user.metrics).toBeNull();
    expect(res.errors[0].extensions.code).toBe('SOURCE_UNAVAILABLE');
    expect(res.extensions?.stale).toBeUndefined();
  });

  it('past the stale-if-error window, the failure is an error', async () => {
    const short = await stackWith({
      cache: { entities: entities({ ttlMs: 100, staleWhileRevalidateMs: 0, staleIfErrorMs: 200 }) },
      tuning: { analytics: { retryMaxAttempts: 1 } },
    });
    const id = short.userId(81);
    await short.gql(METRICS_ONLY, { id });
    await sleep(400);
    await short.faults('analytics', { errorRate: 1 });
    const res = (await short.gql<AnyData>(METRICS_ONLY, { id })).body as AnyData;
    expect(res.data.user.metrics).toBeNull();
    expect(res.errors[0].extensions.code).toBe('SOURCE_UNAVAILABLE');
  });
});

describe('authorization over cached data', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await stackWith({});
  });

  it("a user never receives another user's private fields from the cache", async () => {
    const owner = stack.userId(90);
    const other = stack.userId(91);
    const ownerToken = await stack.token({ sub: owner, admin: false });
    const otherToken = await stack.token({ sub: other, admin: false });
    // The owner fills every entry: profile with email, metrics, counts, notifications.
    const own = await stack.gql<AnyData>(DASHBOARD, { id: owner }, { token: ownerToken });
    expect(own.body.errors).toBeUndefined();
    expect(own.body.data!.user.email).toEqual(expect.any(String));
    await stack.reset();

    const theirs = await stack.gql<AnyData>(DASHBOARD, { id: owner }, { token: otherToken });
    const user = theirs.body.data!.user;
    expect(user.name).toBe(own.body.data!.user.name); // public, from the cache
    expect(user.email).toBeNull();
    expect(user.metrics).toBeNull();
    expect(user.unreadNotificationCount).toBeNull();
    expect(user.notifications).toBeNull();
    expect(theirs.text).not.toContain(own.body.data!.user.email);
    const codes = theirs.body.errors!.map((e) => [e.path!.join('.'), e.extensions!.code]);
    expect(codes).toEqual(
      expect.arrayContaining([
        ['user.email', 'FORBIDDEN'],
        ['user.metrics', 'FORBIDDEN'],
        ['user.unreadNotificationCount', 'FORBIDDEN'],
        ['user.notifications', 'FORBIDDEN'],
      ]),
    );
    // Everything came from the cache or was refused: not one upstream call.
    expect(await upstreamCalls(stack)).toEqual({ search: 0, metrics: 0, unread: 0, list: 0 });
  });
});

describeWithRedis('L2 in Redis, shared by instances', () => {
  const redis = new TestRedis();
  let a: Stack;
  let b: Stack;
  let client: Redis;

  beforeAll(async () => {
    await redis.start();
    const prefix = 'gwcache:';
    a = await stackWith({ redis: { url: redis.url, keyPrefix: prefix } });
    b = await stackWith({ redis: { url: redis.url, keyPrefix: prefix }, peerOf: a });
    client = new Redis(redis.url, { maxRetriesPerRequest: 0, enableOfflineQueue: false, lazyConnect: true });
    client.on('error', () => undefined);
    await client.connect();
  });
  afterAll(async () => {
    client?.disconnect();
    await redis.stop();
  });
  afterEach(() => a.reset());

  it("one instance's fetch is another instance's hit", async () => {
    const id = a.userId(100);
    const first = await a.gql<AnyData>(DASHBOARD, { id });
    expect(await upstreamCalls(a)).toEqual({ search: 1, metrics: 1, unread: 1, list: 1 });
    // L2 writes are fire-and-forget: wait until they have landed.
    await expect.poll(async () => (await client.keys('gwcache:c:*')).length).toBeGreaterThanOrEqual(4);
    const second = await b.gql<AnyData>(DASHBOARD, { id });
    expect(second.body.data).toEqual(first.body.data);
    expect(await upstreamCalls(a)).toEqual({ search: 1, metrics: 1, unread: 1, list: 1 });
  });

  /** The one L2 key of a user's metrics, once the fire-and-forget write has landed. */
  const storedMetricsKey = async (id: string): Promise<string> => {
    const keys = async () => (await client.keys('gwcache:c:analytics.metrics:*')).filter((k) => k.includes(id));
    await expect.poll(async () => (await keys()).length).toBe(1);
    return (await keys())[0]!;
  };

  it('metrics cross instances as columns of numbers, under 40 % of their plain JSON, and read back the same series', async () => {
    const id = a.userId(110);
    const query = `query($id: ID!) { user(id: $id) { metrics { pageViews sessions avgSessionSeconds conversionRate lastActiveAt series { at pageViews sessions } } } }`;
    const first = await a.gql<AnyData>(query, { id });
    const points = first.body.data!.user.metrics.series.length;
    expect(points).toBeGreaterThan(0);
    const key = await storedMetricsKey(id);
    const stored = JSON.parse((await client.get(key))!) as { value: { columns: number[]; series?: unknown } };
    expect(stored.value.columns).toHaveLength(points * 3);
    expect(stored.value.series).toBeUndefined();
    const plainLength = JSON.stringify({ ...stored, value: first.body.data!.user.metrics }).length;
    expect(JSON.stringify(stored).length).toBeLessThan(plainLength * 0.4);

    const second = await b.gql<AnyData>(query, { id });
    expect(second.body.data).toEqual(first.body.data);
    expect(await upstreamCalls(a)).toMatchObject({ metrics: 1 });
  });

  it('an L2 entry whose value is not in the stored form reads as a miss: fetched again, answered right', async () => {
    const id = a.userId(111);
    const query = `query($id: ID!) { user(id: $id) { metrics { pageViews series { at pageViews } } } }`;
    const first = await a.gql<AnyData>(query, { id });
    const key = await storedMetricsKey(id);
    const entry = JSON.parse((await client.get(key))!) as Record<string, unknown>;
    // The plain form (an instance of another format), then columns that are not numbers.
    for (const value of [first.body.data!.user.metrics, { ...(entry.value as object), columns: ['x', 1, 2] }]) {
      await a.reset();
      await client.set(key, JSON.stringify({ ...entry, value }), 'PX', 60_000);
      const fresh = await stackWith({ redis: { url: redis.url, keyPrefix: 'gwcache:' }, peerOf: a });
      const res = await fresh.gql<AnyData>(query, { id });
      expect(res.body.data).toEqual(first.body.data);
      expect(await upstreamCalls(a)).toMatchObject({ metrics: 1 });
    }
  });

  /** A RedisTier of its own on this Redis, under its own key prefix, closed after `use`. */
  const withTier = async (prefix: string, use: (tier: RedisTier) => Promise<void>): Promise<void> => {
    const connection = new RedisConnection({ url: redis.url, keyPrefix: prefix }, createLogger({ level: 'silent' }));
    try {
      await expect.poll(() => connection.available).toBe(true);
      await use(new RedisTier(connection, 1000, createLogger({ level: 'silent' })));
    } finally {
      await connection.close();
    }
  };

  it('a batch of writes stores each entry with its TTL in its group index, the index living as long as its longest entry', async () => {
    await withTier('gwtier:', (tier) => expectTierWrites(tier, client));
  });

  /** How many times Redis ran each command since the last CONFIG RESETSTAT (a script's own commands included). */
  const commandCalls = async (): Promise<Record<string, number>> => {
    const info = await client.info('commandstats');
    return Object.fromEntries([...info.matchAll(/cmdstat_(\w+):calls=(\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
  };

  it("one tick's reads go as one MGET, each caller answered with its own keys; a turn's writes as one script call", async () => {
    await withTier('gwcoalesce:', async (tier) => {
      const write = (group: string) => ({ key: tier.key('e:1', group, ''), indexKey: tier.indexKey('e:1', group), json: `"${group}"`, ttlMs: 60_000 });
      // The script loaded once, so the count below is of EVALSHA alone.
      tier.setMany([write('warm')]);
      await expect.poll(() => client.exists(write('warm').key)).toBe(1);

      await client.config('RESETSTAT');
      tier.setMany([write('a'), write('b')]);
      await Promise.resolve();
      tier.setMany([write('c')]);
      setImmediate(() => tier.setMany([write('d')])); // the next turn: its own call
      await expect.poll(() => client.exists(...['a', 'b', 'c', 'd'].map((g) => write(g).key))).toBe(4);
      expect((await commandCalls()).evalsha).toBe(2);

      await client.config('RESETSTAT');
      const [ab, none, c] = await Promise.all([tier.getMany([write('a').key, write('b').key]), tier.getMany([tier.key('e:1', 'nope', '')]), tier.getMany([write('c').key])]);
      expect([ab, none, c]).toEqual([['"a"', '"b"'], [null], ['"c"']]);
      // Three callers, one command.
      expect((await commandCalls()).mget).toBe(1);

      // Past 2,000 keys waiting, the MGET goes at once and the tick's later reads make another.
      await client.config('RESETSTAT');
      const many = Array.from({ length: 2000 }, (_, i) => tier.key('e:1', `many${i}`, ''));
      const [first, last] = await Promise.all([tier.getMany(many), tier.getMany([write('c').key])]);
      expect([first?.length, first?.every((v) => v === null), last]).toEqual([2000, true, ['"c"']]);
      expect((await commandCalls()).mget).toBe(2);
    });
  });

  it('an invalidation in the same turn as a write is not overtaken by it', async () => {
    await withTier('gworder:', async (tier) => {
      const w = { key: tier.key('e:1', 'g', ''), indexKey: tier.indexKey('e:1', 'g'), json: '"old"', ttlMs: 60_000 };
      tier.setMany([w]);
      expect(await tier.deleteGroups([w.indexKey])).toBe(true);
      // Had the write waited for the end of the turn, it would have landed after the delete.
      await new Promise((r) => setTimeout(r, 50));
      expect(await client.exists(w.key, w.indexKey)).toBe(0);
    });
  });

  it('an invalidation drops the entries in both tiers on every instance', async () => {
    const id = a.userId(101);
    await a.gql(DASHBOARD, { id });
    await expect.poll(async () => (await client.keys(`gwcache:c:notifications.page*{${id}}*`)).length).toBe(1);
    await b.gql(DASHBOARD, { id }); // now in B's L1 too
    expect(b.gateway.caches.user.cachedLocally(id)).toBe(true);
    expect(b.gateway.caches.notificationPage.cachedLocally({ userId: id, offset: 0, first: 5, unreadOnly: false })).toBe(true);

    await a.gateway.caches.invalidateProfile(id);
    await a.gateway.caches.invalidateNotifications(id);
    await expect.poll(() => b.gateway.caches.user.cachedLocally(id)).toBe(false);
    await expect.poll(() => b.gateway.caches.notificationPage.cachedLocally({ userId: id, offset: 0, first: 5, unreadOnly: false })).toBe(false);
    expect(await client.keys(`gwcache:c:identity.user*{${id}}*`)).toEqual([]);
    expect(await client.keys(`gwcache:c:notifications.page*{${id}}*`)).toEqual([]);
    // Metrics were not touched by the "write": still cached.
    expect(b.gateway.caches.metrics.cachedLocally({ userId: id, range: currentRange() })).toBe(true);

    await b.gql(DASHBOARD, { id });
    expect(await upstreamCalls(a)).toEqual({ search: 2, metrics: 1, unread: 2, list: 2 });
  });
});

describeWithRedis('Redis trouble never takes the server down', () => {
  const redis = new TestRedis();
  let stack: Stack;
  let peer: Stack;

  beforeAll(async () => {
    await redis.start();
    stack = await stackWith({ redis: { url: redis.url, keyPrefix: 'gwdown:' } });
    peer = await stackWith({ redis: { url: redis.url, keyPrefix: 'gwdown:' }, peerOf: stack });
  });
  afterAll(() => redis.stop());

  it('Redis stopped mid-load: every query answers from L1 and upstreams, one log line; Redis back: L2 in use again', async () => {
    const ids = Array.from({ length: 10 }, (_, i) => stack.userId(110 + i));
    let running = true;
    const failures: unknown[] = [];
    let answered = 0;
    const load = (async () => {
      while (running) {
        const res = await stack.gql<AnyData>(DASHBOARD, { id: ids[answered % ids.length] });
        if (res.status !== 200 || res.body.errors) failures.push(res.body.errors ?? res.status);
        answered++;
      }
    })();

    await sleep(500);
    const logsBefore = stack.logs.length;
    await redis.stop();
    const atStop = answered;
    await sleep(1500);
    expect(answered - atStop).toBeGreaterThan(20);

    await redis.start();
    // ioredis reconnects on its own, backing off up to 2 s.
    await expect.poll(() => stack.gateway.redis!.available, { timeout: 10_000 }).toBe(true);
    // The peer reconnects on its own schedule: until it has, its reads miss L2 (what the last step counts).
    await expect.poll(() => peer.gateway.redis!.available, { timeout: 10_000 }).toBe(true);
    await sleep(300);
    running = false;
    await load;
    expect(failures).toEqual([]);

    const outageLogs = stack.logs.slice(logsBefore).filter((l) => /Redis unreachable/.test(l));
    expect(outageLogs).toHaveLength(1);

    // Redis came back empty; a fresh user on one instance is a hit on the other.
    const fresh = stack.userId(130);
    await stack.reset();
    await stack.gql(DASHBOARD, { id: fresh });
    await expect
      .poll(
        async () => {
          const c = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
          await c.connect();
          const keys = await c.keys(`gwdown:c:*{${fresh}}*`);
          c.disconnect();
          return keys.length;
        },
        { timeout: 5000 },
      )
      .toBeGreaterThanOrEqual(4);
    await peer.gql(DASHBOARD, { id: fresh });
    expect(await upstreamCalls(stack)).toEqual({ search: 1, metrics: 1, unread: 1, list: 1 });
  });
});

describeWithRedis('a hung Redis costs a short timeout, then nothing', () => {
  const redis = new TestRedis();
  let stack: Stack;
  beforeAll(async () => {
    await redis.start();
    stack = await stackWith({ redis: { url: redis.url, keyPrefix: 'gwhang:' }, cache: { l2TimeoutMs: 100 } });
  });
  afterAll(() => redis.stop());

  it('L2 reads time out, its breaker opens (logged once for the outage), queries still answer; it closes when Redis answers again', async () => {
    const hang = new Redis(redis.url, { maxRetriesPerRequest: 0 });
    // Redis stops answering for 6 s, connections open: only timeouts can tell.
    const sleeping = hang.call('DEBUG', 'SLEEP', '6').catch(() => undefined);
    await sleep(50);
    const failing = () => stack.logs.filter((l) => l.includes('L2 cache (Redis) failing'));
    for (let i = 0; i < 8; i++) {
      const res = await stack.gql<AnyData>(`query($id: ID!) { user(id: $id) { id name } }`, { id: stack.userId(140 + i) });
      expect(res.body.errors).toBeUndefined();
      expect(res.body.data!.user.id).toBe(stack.userId(140 + i));
    }
    expect(failing()).toHaveLength(1);
    // Half-open 2 s after it opened: this query's L2 read probes while Redis still sleeps, fails, and opens the
    // breaker again. That is the same outage: no second line.
    await sleep(2_200);
    const during = await stack.gql<AnyData>(`query($id: ID!) { user(id: $id) { id } }`, { id: stack.userId(148) });
    expect(during.body.data!.user.id).toBe(stack.userId(148));
    expect(failing()).toHaveLength(1);
    await sleeping;
    hang.disconnect();
    // Half-open after 2 s: the next L2 read (a user not in L1 yet) probes, succeeds, closes it.
    let next = 150;
    await expect
      .poll(
        async () => {
          await stack.gql(`query($id: ID!) { user(id: $id) { id } }`, { id: stack.userId(next++) });
          return stack.logs.filter((l) => l.includes('L2 cache (Redis) answering again')).length;
        },
        { timeout: 10_000, interval: 500 },
      )
      .toBe(1);
  });
});

/** The range `metrics` asks for without arguments (DAY, 30 days to the end of the current hour). */
function currentRange() {
  const toSec = Math.ceil(Date.now() / 1000 / 3600) * 3600;
  return { fromSec: toSec - 30 * 86_400, toSec, granularity: 'DAY' as const };
}
