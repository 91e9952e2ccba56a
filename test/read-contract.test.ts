import { describe, expect, it } from 'vitest';
import { calls, sharedStack } from './helpers/stack.js';

const stack = sharedStack();

type AnyData = Record<string, any>;

describe('the read contract, through GraphQL over HTTP', () => {
  it('resolves every User field, normalized from the three vendors', async () => {
    const id = stack.userId(3);
    const raw = stack.upstreams.dataset.user(id)!;
    const res = await stack.gql<AnyData>(
      `query($id: ID!) { user(id: $id) { id email emailVerified name nickname avatarUrl createdAt lastLoginAt
         metrics { pageViews sessions avgSessionSeconds conversionRate lastActiveAt series { at pageViews sessions } }
         unreadNotificationCount
         notifications(first: 3) { totalCount edges { cursor node { id title body channel read createdAt } } pageInfo { hasNextPage endCursor } }
         events(first: 3) { totalCount edges { cursor node { id type occurredAt properties } } pageInfo { hasNextPage endCursor } } } }`,
      { id },
    );
    expect(res.status).toBe(200);
    expect(res.body.errors).toBeUndefined();
    const user = res.body.data!.user;
    expect(user).toMatchObject({
      id,
      email: raw.email,
      emailVerified: raw.email_verified,
      name: raw.name,
      nickname: raw.nickname,
      avatarUrl: raw.picture,
      createdAt: raw.created_at,
      lastLoginAt: raw.last_login,
    });
    // Metrics: aggregates equal the sum of the series, timestamps ISO.
    const m = user.metrics;
    expect(m.series.length).toBeGreaterThanOrEqual(30);
    expect(m.pageViews).toBe(m.series.reduce((n: number, p: AnyData) => n + p.pageViews, 0));
    expect(m.series[0].at).toMatch(/^\d{4}-\d{2}-\d{2}T00:00:00\.000Z$/);
    expect(m.lastActiveAt).toMatch(/Z$/);
    // Notifications: HTTP-dates became ISO, channels the enum, total from X-Total-Count.
    const stored = stack.upstreams.dataset.notificationsOf(3);
    expect(user.notifications.totalCount).toBe(stored.length);
    expect(user.notifications.edges.map((e: AnyData) => e.node.id)).toEqual(stored.slice(0, 3).map((n) => n.id));
    expect(user.notifications.edges[0].node.createdAt).toBe(new Date(stored[0]!.createdMs).toISOString());
    expect(['EMAIL', 'PUSH', 'IN_APP']).toContain(user.notifications.edges[0].node.channel);
    expect(user.unreadNotificationCount).toBe(stored.filter((n) => !n.read).length);
    // Events: Unix ms became ISO.
    const events = stack.upstreams.dataset.eventsOf(3);
    expect(user.events.edges.map((e: AnyData) => e.node.id)).toEqual(events.slice(0, 3).map((e) => e.id));
    expect(user.events.edges[0].node.occurredAt).toBe(new Date(events[0]!.ts).toISOString());
    expect(user.events.totalCount).toBeNull();
  });

  it('users(ids) keeps the order asked and answers null for unknown ids', async () => {
    const ids = [stack.userId(9), 'auth0|doesnotexist', stack.userId(2), stack.userId(9)];
    const res = await stack.gql<AnyData>(`query($ids: [ID!]!) { users(ids: $ids) { id name } }`, { ids });
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data!.users.map((u: AnyData | null) => u?.id ?? null)).toEqual([ids[0], null, ids[2], ids[0]]);
  });

  it('user(id) is null for an unknown id, without an error', async () => {
    const res = await stack.gql<AnyData>(`{ user(id: "auth0|nobody") { id } }`);
    expect(res.body).toEqual({ data: { user: null } });
  });

  it('viewer is the token subject', async () => {
    const token = await stack.token({ sub: stack.userId(5), admin: false });
    const res = await stack.gql<AnyData>(`{ viewer { id name email } }`, {}, { token });
    expect(res.body.data!.viewer).toEqual({ id: stack.userId(5), name: stack.upstreams.dataset.users[5]!.name, email: stack.upstreams.dataset.users[5]!.email });
  });

  it('userList pages through all users with opaque cursors, also off page boundaries', async () => {
    const q = `query($first: Int, $after: String) { userList(first: $first, after: $after) { totalCount edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }`;
    const first = await stack.gql<AnyData>(q, { first: 3 });
    expect(first.body.data!.userList.totalCount).toBe(1200);
    expect(first.body.data!.userList.edges.map((e: AnyData) => e.node.id)).toEqual([0, 1, 2].map((i) => stack.userId(i)));
    const cursor = first.body.data!.userList.pageInfo.endCursor as string;
    expect(cursor).not.toMatch(/^\d+$/);
    // Offset 3, 7 users: no page size ≤ 7 covers it in one page → the source still answers exactly.
    const second = await stack.gql<AnyData>(q, { first: 7, after: cursor });
    expect(second.body.data!.userList.edges.map((e: AnyData) => e.node.id)).toEqual([3, 4, 5, 6, 7, 8, 9].map((i) => stack.userId(i)));
    expect(second.body.data!.userList.pageInfo.hasNextPage).toBe(true);
    // The last page says there is no next one.
    const lastCursor = Buffer.from(JSON.stringify(['users', 1198])).toString('base64url');
    const last = await stack.gql<AnyData>(q, { first: 5, after: lastCursor });
    expect(last.body.data!.userList.edges).toHaveLength(2);
    expect(last.body.data!.userList.pageInfo.hasNextPage).toBe(false);
  });

  it('notifications page with cursors, unreadOnly filters and counts unread', async () => {
    const id = stack.userId(0);
    const stored = stack.upstreams.dataset.notificationsOf(0);
    const unread = stored.filter((n) => !n.read);
    const q = `query($id: ID!, $after: String, $u: Boolean) { user(id: $id) { notifications(first: 4, after: $after, unreadOnly: $u) { totalCount edges { node { id read } } pageInfo { hasNextPage endCursor } } } }`;
    const p1 = await stack.gql<AnyData>(q, { id, u: true });
    const c1 = p1.body.data!.user.notifications;
    expect(c1.totalCount).toBe(unread.length);
    expect(c1.edges.every((e: AnyData) => e.node.read === false)).toBe(true);
    const p2 = await stack.gql<AnyData>(q, { id, u: true, after: c1.pageInfo.endCursor });
    expect(p2.body.data!.user.notifications.edges.map((e: AnyData) => e.node.id)).toEqual(unread.slice(4, 8).map((n) => n.id));
  });

  it('events follow the vendor cursor across pages, and an edge cursor resumes mid-page', async () => {
    const id = stack.userId(1);
    const all = stack.upstreams.dataset.eventsOf(1);
    expect(all.length).toBeGreaterThan(10);
    const q = `query($id: ID!, $first: Int, $after: String) { user(id: $id) { events(first: $first, after: $after) { edges { cursor node { id } } pageInfo { hasNextPage endCursor } } } }`;
    const p1 = await stack.gql<AnyData>(q, { id, first: 5 });
    const edges = p1.body.data!.user.events.edges;
    expect(edges.map((e: AnyData) => e.node.id)).toEqual(all.slice(0, 5).map((e) => e.id));
    // Resume after the 2nd edge, not the last: the next 4 are events 2..5.
    const mid = await stack.gql<AnyData>(q, { id, first: 4, after: edges[1].cursor });
    expect(mid.body.data!.user.events.edges.map((e: AnyData) => e.node.id)).toEqual(all.slice(2, 6).map((e) => e.id));
    // Walk to the end; every event is seen once, in order.
    const seen: string[] = [];
    let after: string | null = null;
    for (let i = 0; i < 50; i++) {
      const page: AnyData = await stack.gql<AnyData>(q, { id, first: 7, after });
      const conn = page.body.data.user.events;
      seen.push(...conn.edges.map((e: AnyData) => e.node.id));
      if (!conn.pageInfo.hasNextPage) break;
      after = conn.pageInfo.endCursor;
    }
    expect(seen).toEqual(all.map((e) => e.id));
  });

  it('metrics take from, to and HOUR granularity', async () => {
    const id = stack.userId(4);
    const res = await stack.gql<AnyData>(
      `query($id: ID!) { user(id: $id) { metrics(from: "2026-01-01T00:00:00Z", to: "2026-01-01T06:00:00Z", granularity: HOUR) { pageViews series { at pageViews } } } }`,
      { id },
    );
    const series = res.body.data!.user.metrics.series;
    expect(series.map((p: AnyData) => p.at)).toEqual([0, 1, 2, 3, 4, 5].map((h) => `2026-01-01T0${h}:00:00.000Z`));
    const body = (await stack.stats('analytics')).routes['POST /v1/metrics/query'];
    expect(body?.calls).toBe(1);
  });

  it('a user analytics has never seen has null metrics and no error', async () => {
    const res = await stack.gql<AnyData>(`query($id: ID!) { user(id: $id) { id metrics { pageViews } } }`, { id: stack.userId(49) });
    expect(res.body).toEqual({ data: { user: { id: stack.userId(49), metrics: null } } });
  });

  it('bad arguments are BAD_USER_INPUT naming the argument, and reach no upstream', async () => {
    const id = stack.userId(0);
    const cases: [string, string][] = [
      [`{ userList(first: 0) { totalCount } }`, 'first'],
      [`{ userList(first: 101) { totalCount } }`, 'first'],
      [`{ userList(after: "bm90LWEtY3Vyc29y") { totalCount } }`, 'after'],
      [`{ user(id: "${id}") { notifications(after: "WyJ1c2VycyIsM10") { totalCount } } }`, 'after'],
      [`{ user(id: "${id}") { metrics(from: "2026-02-01T00:00:00Z", to: "2026-01-01T00:00:00Z") { pageViews } } }`, 'from'],
      [`{ user(id: "${id}") { metrics(from: "2020-01-01T00:00:00Z", to: "2026-01-01T00:00:00Z") { pageViews } } }`, 'to'],
      [`{ user(id: "") { id } }`, 'id'],
    ];
    for (const [query, argument] of cases) {
      const res = await stack.gql<AnyData>(query);
      expect(res.status, query).toBe(200);
      expect(res.body.errors?.[0]?.extensions, query).toMatchObject({ code: 'BAD_USER_INPUT', argument });
    }
    const badDate = await stack.gql<AnyData>(`{ user(id: "${id}") { metrics(from: "yesterday") { pageViews } } }`);
    expect(badDate.status).toBe(400);
    expect(badDate.body.errors?.[0]?.message).toMatch(/DateTime/);
    expect(calls(await stack.stats('analytics'), 'POST /v1/metrics/query')).toBe(0);
    expect(calls(await stack.stats('notifications'), 'GET /v1/users/:id/notifications')).toBe(0);
  });
});
