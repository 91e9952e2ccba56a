import { describe, expect, it } from 'vitest';
import { calls, sharedStack, type Stack } from './helpers/stack.js';

const stack = sharedStack();

type AnyData = Record<string, any>;

const LIST = `query($ids: [ID!]!) { users(ids: $ids) { id name metrics { pageViews } unreadNotificationCount } }`;

describe('batching over the bulk endpoints', () => {
  it('users(ids: [50 ids]) with names, metrics and unread counts makes exactly one call to each bulk endpoint', async () => {
    const ids = Array.from({ length: 50 }, (_, i) => stack.userId(100 + i));
    const res = await stack.gql<AnyData>(LIST, { ids });
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data!.users).toHaveLength(50);
    // Each user got their own metrics, not a neighbour's.
    for (const [i, user] of (res.body.data!.users as AnyData[]).entries()) {
      expect(user.id).toBe(ids[i]);
      expect(user.unreadNotificationCount).toBe(stack.upstreams.dataset.notificationsOf(100 + i).filter((n) => !n.read).length);
    }

    const identity = await stack.stats('identity');
    const analytics = await stack.stats('analytics');
    const notifications = await stack.stats('notifications');
    expect(calls(identity, 'GET /api/v2/users')).toBe(1);
    expect(identity.routes['GET /api/v2/users']!.batchSizes).toEqual([50]);
    expect(calls(analytics, 'POST /v1/metrics/query')).toBe(1);
    expect(analytics.routes['POST /v1/metrics/query']!.batchSizes).toEqual([50]);
    expect(calls(notifications, 'GET /v1/unread-counts')).toBe(1);
    expect(notifications.routes['GET /v1/unread-counts']!.batchSizes).toEqual([50]);
    // Nothing else was called (the OAuth token may or may not have been fetched already).
    expect(analytics.totalCalls).toBe(1);
    expect(notifications.totalCalls).toBe(1);
  });

  it('bulk answers in another order, one row twice: every user still gets their own data, nothing extra', async () => {
    const first = 620;
    const ids = Array.from({ length: 6 }, (_, i) => stack.userId(first + i));
    const bulk = ['GET /api/v2/users', 'POST /v1/metrics/query'];
    const seriesOf = async () =>
      ((await stack.gql<AnyData>(`query($ids: [ID!]!) { users(ids: $ids) { metrics { series { at pageViews sessions } } } }`, { ids })).body.data!.users as AnyData[]).map(
        (u) => u.metrics?.series ?? null,
      );
    const plainSeries = await seriesOf();
    await Promise.all((['identity', 'analytics'] as const).map((source) => stack.faults(source, { jumbleLists: true, routes: bulk })));
    const res = await stack.gql<AnyData>(`query($ids: [ID!]!) { users(ids: $ids) { id name metrics { avgSessionSeconds conversionRate } unreadNotificationCount } }`, { ids });
    expect(res.body.errors).toBeUndefined();
    // Each series came reversed with a point twice: oldest first and once again.
    expect(plainSeries.some((series) => series !== null && series.length > 1)).toBe(true);
    expect(await seriesOf()).toEqual(plainSeries);
    const { dataset } = stack.upstreams;
    expect(res.body.data!.users).toEqual(
      ids.map((id, k) => {
        const i = first + k;
        return {
          id,
          name: dataset.users[i]!.name,
          metrics: dataset.hasAnalytics(i) ? { avgSessionSeconds: dataset.avgSessionSeconds(i), conversionRate: dataset.conversionRate(i) } : null,
          unreadNotificationCount: dataset.unreadCountOf(i),
        };
      }),
    );
    // One bulk call a query (three queries); the fault was on: the vendors' answers held seven rows for six ids.
    expect(calls(await stack.stats('identity'), 'GET /api/v2/users')).toBe(3);
    expect(calls(await stack.stats('analytics'), 'POST /v1/metrics/query')).toBe(3);
    await Promise.all((['identity', 'analytics'] as const).map((source) => stack.faults(source, {})));
  });

  it('chunks at the vendor maximum of 100: 250 ids are 3 calls per bulk endpoint', async () => {
    const ids = Array.from({ length: 250 }, (_, i) => stack.userId(300 + i));
    const res = await stack.gql<AnyData>(LIST, { ids });
    expect(res.body.errors).toBeUndefined();
    expect((res.body.data!.users as AnyData[]).map((u) => u.id)).toEqual(ids);
    const sizes = (s: Awaited<ReturnType<Stack['stats']>>, route: string) => [...s.routes[route]!.batchSizes].sort((a, b) => b - a);
    expect(sizes(await stack.stats('identity'), 'GET /api/v2/users')).toEqual([100, 100, 50]);
    expect(sizes(await stack.stats('analytics'), 'POST /v1/metrics/query')).toEqual([100, 100, 50]);
    expect(sizes(await stack.stats('notifications'), 'GET /v1/unread-counts')).toEqual([100, 100, 50]);
  });

  it('the same user asked for twice in one request is fetched once', async () => {
    const id = stack.userId(7);
    const res = await stack.gql<AnyData>(`query($id: ID!) { a: user(id: $id) { name metrics { pageViews } } b: user(id: $id) { nickname metrics { sessions } } viewer { id } }`, {
      id,
    });
    expect(res.body.errors).toBeUndefined();
    expect(calls(await stack.stats('identity'), 'GET /api/v2/users')).toBe(1);
    expect(calls(await stack.stats('analytics'), 'POST /v1/metrics/query')).toBe(1);
  });

  it('userList feeds the nested fields from one page call and one bulk call each', async () => {
    const res = await stack.gql<AnyData>(`{ userList(first: 30) { edges { node { name metrics { pageViews } unreadNotificationCount } } } }`);
    expect(res.body.errors).toBeUndefined();
    expect(calls(await stack.stats('identity'), 'GET /api/v2/users')).toBe(1);
    expect(calls(await stack.stats('analytics'), 'POST /v1/metrics/query')).toBe(1);
    expect(calls(await stack.stats('notifications'), 'GET /v1/unread-counts')).toBe(1);
  });
});

describe('concurrency', () => {
  it('with 200 ms on every read upstream, the dashboard costs about one upstream round trip, not the sum', async () => {
    const id = stack.userId(11);
    const dashboard = `query($id: ID!) { user(id: $id) { name email metrics { pageViews } unreadNotificationCount notifications(first: 5) { totalCount } events(first: 3) { edges { node { type } } } } }`;
    await stack.gql(dashboard, { id }); // the OAuth token is fetched once, not part of the measure
    for (const name of ['identity', 'analytics', 'notifications'] as const) await stack.faults(name, { latencyMs: 200 });
    const started = performance.now();
    const res = await stack.gql<AnyData>(dashboard, { id: stack.userId(12) });
    const elapsed = performance.now() - started;
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data!.user.metrics.pageViews).toBeGreaterThanOrEqual(0);
    // Identity first, then the rest, would be ≥ 400 ms; each field in turn ≥ 800 ms.
    // Concurrent is one 200 ms round trip plus overhead; the bound is generous.
    expect(elapsed).toBeGreaterThanOrEqual(200);
    expect(elapsed).toBeLessThan(350);
  });

  it('does not start private fields of another user for a non-admin viewer', async () => {
    const token = await stack.token({ sub: stack.userId(20), admin: false });
    const res = await stack.gql<AnyData>(`query($id: ID!) { user(id: $id) { name metrics { pageViews } } }`, { id: stack.userId(21) }, { token });
    expect(res.body.data!.user).toEqual({ name: stack.upstreams.dataset.users[21]!.name, metrics: null });
    expect(res.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(calls(await stack.stats('analytics'), 'POST /v1/metrics/query')).toBe(0);
  });
});
