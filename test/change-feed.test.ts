import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseUpdatedSince } from '../simulator/identity.js';
import { advance } from '../src/realtime/change-feed.js';
import { collect, eventually, wsClient } from './helpers/live-client.js';
import { describeWithRedis, TestRedis } from './helpers/redis.js';
import { calls, everyEntity, stackPool, type Stack } from './helpers/stack.js';
import { metric } from './helpers/metrics.js';

/**
 * Identity has no webhooks: its changes are pulled (`updated_at:[<mark> TO *]`,
 * inclusive, oldest first) after a high-water mark, invalidated on every
 * instance and published as Subscription.userUpdated. A vendor without the
 * filter: records the cache refreshes are hashed instead.
 */
type AnyData = Record<string, any>;
const INTERVAL = 300;
const CHANGES = 'GET /api/v2/users?q=updated_at';
const NAME = `query($u: ID!) { user(id: $u) { name } }`;
const UPDATED = `subscription($u: ID!) { userUpdated(userId: $u) { id name nickname } }`;
/** The metric line of changes applied from identity's pulls. */
const PULLED = 'gateway_changes_total{source="identity",via="pull"}';

const stackWith = stackPool((o) => ({
  cache: { enabled: true },
  changeFeeds: { identity: { mode: 'pull', intervalMs: INTERVAL } },
  ...o,
}));

/** Changes a profile at the simulated vendor directly, behind the server's back. */
async function editBehindTheServer(stack: Stack, userId: string, changes: Record<string, string>): Promise<void> {
  const res = await fetch(`${stack.upstreams.identity.url}/__admin/users/${encodeURIComponent(userId)}`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(changes),
  });
  expect(res.status).toBe(200);
}

const nameOf = async (stack: Stack, userId: string) => ((await stack.gql<AnyData>(NAME, { u: userId })).body.data?.user?.name as string | undefined) ?? null;

/** A profile read, changed behind the server, and read again: fresh within 200 ms (its cache entry lives 150 ms), and counted as one change found by hashing. */
async function expectFoundByHashing(stack: Stack, user: string): Promise<void> {
  const HASHED = 'gateway_changes_total{source="identity",via="hash"}';
  await nameOf(stack, user);
  const before = await metric(stack, HASHED);
  await editBehindTheServer(stack, user, { name: 'Found By Hash' });
  await new Promise((r) => setTimeout(r, 200));
  expect(await nameOf(stack, user)).toBe('Found By Hash');
  expect(await eventually(async () => (await metric(stack, HASHED)) === before + 1, 500)).toBe(true);
}

describe('change feed: identity pulled after a high-water mark', () => {
  it('a profile changed behind the server is fresh in a query and delivered to a subscriber within two intervals, once', async () => {
    const stack = await stackWith();
    const user = stack.userId(70);
    const original = await nameOf(stack, user);
    const client = wsClient(stack, await stack.token({ sub: user, admin: false }));
    try {
      const sub = collect(client, UPDATED, { u: user });
      await new Promise((r) => setTimeout(r, 100));
      const before = await stack.stats('identity');
      const editedAt = Date.now();
      await editBehindTheServer(stack, user, { name: 'Renamed Behind' });
      expect(await eventually(() => sub.events.length > 0, 2 * INTERVAL + 200)).toBe(true);
      const deliveredMs = Date.now() - editedAt;
      expect(sub.events[0]).toEqual({ data: { userUpdated: { id: user, name: 'Renamed Behind', nickname: expect.any(String) } } });
      expect(await nameOf(stack, user)).toBe('Renamed Behind');
      expect(original).not.toBe('Renamed Behind');
      // The inclusive bound brings the change back on every pass: it is skipped, not published again.
      await new Promise((r) => setTimeout(r, 3 * INTERVAL));
      expect(sub.events).toHaveLength(1);
      const after = await stack.stats('identity');
      const elapsed = Date.now() - editedAt;
      // One list call per interval (fewer than a page changed), and only the changed user read again.
      expect(calls(after, CHANGES) - calls(before, CHANGES)).toBeLessThanOrEqual(Math.ceil(elapsed / INTERVAL) + 1);
      expect(calls(after, 'GET /api/v2/users') - calls(before, 'GET /api/v2/users')).toBe(1);
      console.log(`userUpdated delivered ${deliveredMs} ms after the edit (interval ${INTERVAL} ms)`);
      sub.stop();
    } finally {
      await client.dispose();
    }
  });

  it('pulled as a bare array of users (include_totals not applied): the change still reaches a query', async () => {
    const stack = await stackWith();
    const user = stack.userId(71);
    expect(await nameOf(stack, user)).not.toBe('Renamed Bare');
    await stack.faults('identity', { stripParams: ['include_totals'] });
    await editBehindTheServer(stack, user, { name: 'Renamed Bare' });
    expect(await eventually(async () => (await nameOf(stack, user)) === 'Renamed Bare', 2 * INTERVAL + 500)).toBe(true);
    expect(stack.logs.filter((l) => l.includes('Change feed of identity failed'))).toHaveLength(0);
  });

  it('more than a page changed in one millisecond: every user invalidated, each published once, through pages', async () => {
    const stack = await stackWith();
    const at = new Date(Date.now() - 1000).toISOString();
    const users = Array.from({ length: 150 }, (_, i) => stack.userId(200 + i));
    for (const u of [users[0]!, users[99]!, users[149]!]) await nameOf(stack, u);
    const published = await metric(stack, PULLED);
    for (const [i, u] of users.entries()) await editBehindTheServer(stack, u, { nickname: `bulk${i}`, updated_at: at });
    expect(await eventually(async () => (await metric(stack, PULLED)) - published >= 150, 4 * INTERVAL)).toBe(true);
    await new Promise((r) => setTimeout(r, 3 * INTERVAL));
    expect((await metric(stack, PULLED)) - published).toBe(150);
    for (const [i, u] of [users[0]!, users[99]!, users[149]!].entries()) {
      const nickname = (await stack.gql<AnyData>(`query($u: ID!) { user(id: $u) { nickname } }`, { u })).body.data!.user.nickname;
      expect(nickname).toBe(`bulk${[0, 99, 149][i]}`);
    }
  });

  it('a change its search lists late, under an earlier updated_at than one already applied: applied and published, once', async () => {
    // Auth0's search index is eventually consistent: a change can be listed after a later one has been.
    const stack = await stackWith();
    const late = stack.userId(72);
    const prompt = stack.userId(73);
    for (const u of [late, prompt]) await nameOf(stack, u);
    const client = wsClient(stack, await stack.token({ sub: late, admin: false }));
    try {
      const sub = collect(client, UPDATED, { u: late });
      await new Promise((r) => setTimeout(r, 100));
      await stack.faults('identity', { searchLagMs: 2_500 });
      await editBehindTheServer(stack, late, { name: 'Listed Late' });
      await stack.faults('identity', {});
      await new Promise((r) => setTimeout(r, 20));
      await editBehindTheServer(stack, prompt, { name: 'Listed At Once' });
      // The prompt change is applied, and the mark moves past the late one's instant, before the late one is listed.
      expect(await eventually(async () => (await nameOf(stack, prompt)) === 'Listed At Once', 2 * INTERVAL + 500)).toBe(true);
      expect(sub.events).toHaveLength(0);
      expect(await nameOf(stack, late)).not.toBe('Listed Late');
      expect(await eventually(() => sub.events.length > 0, 2_500 + 3 * INTERVAL)).toBe(true);
      expect(sub.events[0]).toEqual({ data: { userUpdated: { id: late, name: 'Listed Late', nickname: expect.any(String) } } });
      expect(await nameOf(stack, late)).toBe('Listed Late');
      // Listed again on every pass within the overlap: skipped, not published again.
      await new Promise((r) => setTimeout(r, 4 * INTERVAL));
      expect(sub.events).toHaveLength(1);
      sub.stop();
    } finally {
      await client.dispose();
    }
  });

  it('a page that lists a user twice and out of order (a replica): each change applied and published once', async () => {
    const stack = await stackWith();
    const users = [stack.userId(74), stack.userId(75), stack.userId(76)];
    const client = wsClient(stack, await stack.token({ sub: users[0]!, admin: true }));
    try {
      const sub = collect(client, UPDATED, { u: users[0]! });
      await new Promise((r) => setTimeout(r, 100));
      const published = await metric(stack, PULLED);
      await stack.faults('identity', { jumbleLists: true, routes: [CHANGES] });
      for (const [i, u] of users.entries()) await editBehindTheServer(stack, u, { nickname: `twice${i}` });
      expect(await eventually(async () => (await metric(stack, PULLED)) - published >= 3, 4 * INTERVAL)).toBe(true);
      await new Promise((r) => setTimeout(r, 3 * INTERVAL));
      expect((await metric(stack, PULLED)) - published).toBe(3);
      expect(sub.events).toHaveLength(1);
      sub.stop();
    } finally {
      await client.dispose();
    }
  });

  it('a backlog within the overlap is read once: 250 changes a millisecond apart in at most 5 list calls', async () => {
    const stack = await stackWith();
    await nameOf(stack, stack.userId(400));
    // Held back while the changes are made, so one pass finds the whole backlog.
    await stack.faults('identity', { routes: [CHANGES], errorRate: 1, errorStatus: 503 });
    const base = Date.now() - 2_000;
    for (let i = 0; i < 250; i++) await editBehindTheServer(stack, stack.userId(400 + i), { nickname: `backlog${i}`, updated_at: new Date(base + i).toISOString() });
    const published = await metric(stack, PULLED);
    await stack.faults('identity', {});
    const before = calls(await stack.stats('identity'), CHANGES);
    expect(await eventually(async () => (await metric(stack, PULLED)) - published >= 250, 4 * INTERVAL)).toBe(true);
    // Pages of 100 from the overlap before the mark, then from the mark as it moves: not the overlap again each time.
    expect(calls(await stack.stats('identity'), CHANGES) - before).toBeLessThanOrEqual(5);
  });

  it('a vendor that ignores sort (creation order, newest change first here): every change of a three-page backlog applied, once, one warn line', async () => {
    const stack = await stackWith();
    await nameOf(stack, stack.userId(500));
    await stack.faults('identity', { routes: [CHANGES], errorRate: 1, errorStatus: 503 });
    // The first created changed last: page 0 in creation order holds the latest changes, pages 1 and 2 the earlier ones,
    // 150 ms apart, so they span more than the 10 s overlap a pass looks back (within it, the next pass found them).
    const base = Date.now() - 45_000;
    for (let i = 0; i < 250; i++) {
      await editBehindTheServer(stack, stack.userId(500 + i), { nickname: `unsorted${i}`, updated_at: new Date(base + (249 - i) * 150).toISOString() });
    }
    const published = await metric(stack, PULLED);
    await stack.faults('identity', { ignoreSort: true });
    // Read as sorted, page 0 moved the mark past every change on pages 1 and 2: 150 never applied.
    expect(await eventually(async () => (await metric(stack, PULLED)) - published >= 250, 6 * INTERVAL)).toBe(true);
    // Listed again within the overlap on each pass: skipped.
    await new Promise((r) => setTimeout(r, 3 * INTERVAL));
    expect((await metric(stack, PULLED)) - published).toBe(250);
    expect(stack.logs.filter((l) => l.includes('"level":40') && l.includes('not oldest change first'))).toHaveLength(1);
  });

  it("a page refused past the vendor's paging limit (Auth0: 1,000 results) is a failed pass, not a vendor without the filter", async () => {
    const stack = await stackWith();
    const at = new Date(Date.now() - 1000).toISOString();
    await stack.faults('identity', { maxResults: 100 });
    const users = Array.from({ length: 150 }, (_, i) => stack.userId(700 + i));
    for (const [i, u] of users.entries()) await editBehindTheServer(stack, u, { nickname: `capped${i}`, updated_at: at });
    expect(await eventually(async () => (await metric(stack, 'gateway_change_feed_passes_total{source="identity",outcome="failed"}')) >= 1, 4 * INTERVAL)).toBe(true);
    expect(stack.logs.filter((l) => l.includes('refused its change filter'))).toEqual([]);
    expect(stack.logs.filter((l) => l.includes('Change feed of identity failed') && l.includes('paging limit'))).toHaveLength(1);
    // Still polling: once the vendor lets it page on, every change is applied.
    await stack.faults('identity', {});
    expect(
      await eventually(
        async () =>
          (await nameOf(stack, users[149]!)) !== null &&
          (await stack.gql<AnyData>(`query($u: ID!) { user(id: $u) { nickname } }`, { u: users[149]! })).body.data!.user.nickname === 'capped149',
        4 * INTERVAL,
      ),
    ).toBe(true);
  });

  it('a failed pass is repeated: the mark moves only after the changes were applied', async () => {
    const stack = await stackWith();
    const user = stack.userId(71);
    await nameOf(stack, user);
    await stack.faults('identity', { routes: [CHANGES], errorRate: 1, errorStatus: 503 });
    await editBehindTheServer(stack, user, { name: 'Changed While Down' });
    // A pass retries within its deadline, then fails; the next repeats it.
    expect(await eventually(async () => (await metric(stack, 'gateway_change_feed_passes_total{source="identity",outcome="failed"}')) >= 2, 12_000)).toBe(true);
    expect(await nameOf(stack, user)).not.toBe('Changed While Down');
    expect(stack.logs.filter((l) => l.includes('Change feed of identity failed'))).toHaveLength(1);
    await stack.faults('identity', {});
    expect(await eventually(async () => (await nameOf(stack, user)) === 'Changed While Down', 2 * INTERVAL + 500)).toBe(true);
  });

  it('hash mode (a vendor with no change filter): a refreshed record whose hash changed is published, once', async () => {
    const stack = await stackWith({
      changeFeeds: { identity: { mode: 'hash', intervalMs: INTERVAL } },
      cache: { enabled: true, entities: everyEntity({ ttlMs: 150, staleWhileRevalidateMs: 0, staleIfErrorMs: 0 }) },
    });
    const user = stack.userId(72);
    const client = wsClient(stack, await stack.token({ sub: user, admin: false }));
    try {
      const sub = collect(client, UPDATED, { u: user });
      await nameOf(stack, user);
      await new Promise((r) => setTimeout(r, 200));
      await nameOf(stack, user);
      await new Promise((r) => setTimeout(r, 100));
      expect(sub.events).toHaveLength(0);
      await editBehindTheServer(stack, user, { name: 'Hashed Change' });
      await new Promise((r) => setTimeout(r, 200));
      expect(await nameOf(stack, user)).toBe('Hashed Change');
      expect(await eventually(() => sub.events.length > 0, 1000)).toBe(true);
      await new Promise((r) => setTimeout(r, 200));
      await nameOf(stack, user);
      await new Promise((r) => setTimeout(r, 200));
      expect(sub.events).toEqual([{ data: { userUpdated: { id: user, name: 'Hashed Change', nickname: expect.any(String) } } }]);
      expect(calls(await stack.stats('identity'), CHANGES)).toBe(0);
      sub.stop();
    } finally {
      await client.dispose();
    }
  });

  it('a vendor that refuses the filter (400): polling stops, one warn line, changes found by hashing', async () => {
    const stack = await stackWith({ cache: { enabled: true, entities: everyEntity({ ttlMs: 150, staleWhileRevalidateMs: 0, staleIfErrorMs: 0 }) } });
    await stack.faults('identity', { routes: [CHANGES], errorRate: 1, errorStatus: 400 });
    expect(await eventually(() => stack.logs.some((l) => l.includes('identity refused its change filter (HTTP 400)')), 3 * INTERVAL)).toBe(true);
    const changeCalls = calls(await stack.stats('identity'), CHANGES);
    await expectFoundByHashing(stack, stack.userId(73));
    await new Promise((r) => setTimeout(r, 2 * INTERVAL));
    expect(calls(await stack.stats('identity'), CHANGES)).toBe(changeCalls);
  });
});

describe('a vendor that ignores the change filter (a proxy strips q)', () => {
  it('lists users not changed since the mark: none is published, one warn line, and changes are found by hashing as for a vendor without it', async () => {
    const stack = await stackWith({ cache: { enabled: true, entities: everyEntity({ ttlMs: 150, staleWhileRevalidateMs: 0, staleIfErrorMs: 0 }) } });
    const pulled = await metric(stack, PULLED);
    await stack.faults('identity', { routes: [CHANGES], stripParams: ['q'] });
    // Every user, oldest change first: read as changes, each pass published and invalidated users nobody had changed.
    expect(await eventually(() => stack.logs.some((l) => l.includes('"level":40') && l.includes('ignores its change filter')), 3 * INTERVAL)).toBe(true);
    await new Promise((r) => setTimeout(r, 3 * INTERVAL));
    expect((await metric(stack, PULLED)) - pulled).toBe(0);
    const changeCalls = calls(await stack.stats('identity'), CHANGES);
    await expectFoundByHashing(stack, stack.userId(77));
    expect(calls(await stack.stats('identity'), CHANGES)).toBe(changeCalls);
    expect(stack.logs.filter((l) => l.includes('ignores its change filter'))).toHaveLength(1);
  });
});

describe('the mark and the Lucene filter', () => {
  it('advance: the latest instant with the ids applied at it; an unreadable updated_at never moves it', () => {
    const at0 = Date.parse('2026-01-01T00:00:00.000Z');
    const mark = { at: '2026-01-01T00:00:00.000Z', ids: ['a'], recent: [['a', at0]] as [string, number][] };
    expect(advance(mark, [], 0)).toBe(mark);
    expect(advance(mark, [{ id: 'b', updatedAt: '2026-01-01T00:00:00Z', value: {} }], 0)).toEqual({
      at: mark.at,
      ids: ['a', 'b'],
      recent: [
        ['a', at0],
        ['b', at0],
      ],
    });
    const moved = [
      { id: 'c', updatedAt: '2026-01-01T00:00:01.000Z', value: {} },
      { id: 'd', updatedAt: '2026-01-01T00:00:01.000Z', value: {} },
    ];
    expect(advance(mark, moved, 0)).toEqual({
      at: '2026-01-01T00:00:01.000Z',
      ids: ['c', 'd'],
      recent: [
        ['c', at0 + 1000],
        ['d', at0 + 1000],
      ],
    });
    expect(advance(mark, [{ id: 'e', updatedAt: null, value: {} }], 0)).toBe(mark);
  });

  it('advance with an overlap: changes within it stay known, older ones are forgotten, a late one is kept without moving the mark', () => {
    const at0 = Date.parse('2026-01-01T00:00:10.000Z');
    const mark = {
      at: '2026-01-01T00:00:10.000Z',
      ids: ['a'],
      recent: [
        ['a', at0],
        ['old', at0 - 6000],
      ] as [string, number][],
    };
    const late = advance(mark, [{ id: 'late', updatedAt: '2026-01-01T00:00:07.000Z', value: {} }], 5000);
    expect(late.at).toBe(mark.at);
    expect(late.ids).toEqual(['a']);
    expect(new Map(late.recent)).toEqual(
      new Map([
        ['a', at0],
        ['late', at0 - 3000],
      ]),
    );
    const moved = advance(late, [{ id: 'a', updatedAt: '2026-01-01T00:00:14.000Z', value: {} }], 5000);
    expect(moved).toEqual({ at: '2026-01-01T00:00:14.000Z', ids: ['a'], recent: [['a', at0 + 4000]] });
  });

  it('the simulated vendor reads the instant escaped or quoted, and refuses an unescaped colon as Lucene would', () => {
    expect(parseUpdatedSince('updated_at:[2026-01-01T00\\:00\\:00.000Z TO *]')?.toISOString()).toBe('2026-01-01T00:00:00.000Z');
    expect(parseUpdatedSince('updated_at:["2026-01-01T00:00:00.000Z" TO *]')?.toISOString()).toBe('2026-01-01T00:00:00.000Z');
    expect(parseUpdatedSince('updated_at:[2026-01-01T00:00:00.000Z TO *]')).toBeNull();
    expect(parseUpdatedSince('updated_at:[yesterday TO *]')).toBeNull();
  });
});

describeWithRedis('change feed across instances (Redis)', () => {
  const redis = new TestRedis();
  beforeAll(() => redis.start());
  afterAll(() => redis.stop());

  it('one poller across instances; every instance fresh; the other takes over when it stops', async () => {
    const keyPrefix = `cf${Date.now()}:`;
    const a = await stackWith({ redis: { url: redis.url, keyPrefix } });
    const b = await stackWith({ redis: { url: redis.url, keyPrefix }, peerOf: a });
    const user = a.userId(74);
    await nameOf(a, user);
    await nameOf(b, user);
    const start = Date.now();
    const before = calls(await a.stats('identity'), CHANGES);
    await new Promise((r) => setTimeout(r, 10 * INTERVAL));
    const polled = calls(await a.stats('identity'), CHANGES) - before;
    // Two instances polling each interval would make ~20.
    expect(polled).toBeLessThanOrEqual(Math.ceil((Date.now() - start) / INTERVAL) + 1);
    expect(polled).toBeGreaterThanOrEqual(5);
    const client = wsClient(b, await b.token({ sub: user, admin: false }));
    try {
      const sub = collect(client, UPDATED, { u: user });
      await new Promise((r) => setTimeout(r, 100));
      await editBehindTheServer(a, user, { name: 'Seen Everywhere' });
      expect(await eventually(() => sub.events.length > 0, 2 * INTERVAL + 300)).toBe(true);
      expect(await nameOf(a, user)).toBe('Seen Everywhere');
      expect(await nameOf(b, user)).toBe('Seen Everywhere');
      sub.stop();
    } finally {
      await client.dispose();
    }
    // Whichever held the lock, stopping B leaves A polling: B's lock is released on close, or A takes it when it expires.
    await b.gateway.close();
    const handedOver = calls(await a.stats('identity'), CHANGES);
    await new Promise((r) => setTimeout(r, 6 * INTERVAL + 2_000));
    expect(calls(await a.stats('identity'), CHANGES) - handedOver).toBeGreaterThanOrEqual(4);
  });
});
