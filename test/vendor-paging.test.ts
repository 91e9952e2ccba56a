import { describe, expect, it } from 'vitest';
import { notificationCursor, offsetCursor } from '../src/resolvers/cursors.js';
import { calls, sharedStack, stackPool, type GraphQLResponse, type Stack } from './helpers/stack.js';

/**
 * A vendor that pages tighter than `per_page` asks (identity's `maxPerPage`
 * fault: its `limit` says so, `total` counts every match): no user it holds
 * is reported unknown, and paging through a list gives every user once, in
 * order, as against a vendor that honours per_page.
 */
type AnyData = Record<string, any>;

const stack = sharedStack();

const USERS = `query($ids: [ID!]!) { users(ids: $ids) { id name } }`;
const LIST = `query($after: String) { userList(first: 50, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { node { id } } } }`;

async function firstUsersOfList(count: number): Promise<{ ids: string[]; requests: number }> {
  const ids: string[] = [];
  let after: string | null = null;
  let requests = 0;
  while (ids.length < count) {
    const res: GraphQLResponse<AnyData> = await stack.gql<AnyData>(LIST, { after });
    expect(res.body.errors).toBeUndefined();
    const page: AnyData = res.body.data!.userList;
    ids.push(...page.edges.map((e: AnyData) => e.node.id as string));
    expect(page.pageInfo.hasNextPage).toBe(true);
    after = page.pageInfo.endCursor;
    requests++;
  }
  return { ids: ids.slice(0, count), requests };
}

/** The ids of a connection read window by window from its start (`at`: the connection in the answer), at most `most`. */
async function pageThroughOn(on: Stack, query: string, variables: Record<string, unknown>, at: (data: AnyData) => AnyData, most: number): Promise<string[]> {
  const ids: string[] = [];
  let after: string | null = null;
  for (let round = 0; round < 30 && ids.length < most; round++) {
    const res: GraphQLResponse<AnyData> = await on.gql<AnyData>(query, { ...variables, after });
    expect(res.body.errors).toBeUndefined();
    const page = at(res.body.data!);
    ids.push(...page.edges.map((e: AnyData) => e.node.id as string));
    if (!page.pageInfo.hasNextPage) return ids;
    after = page.pageInfo.endCursor;
  }
  return ids.slice(0, most);
}

describe('a vendor whose pages are smaller than asked', () => {
  it('users(ids): every user it holds is found, on the pages after its first; unknown ids stay null', async () => {
    const ids = Array.from({ length: 60 }, (_, i) => stack.userId(100 + i));
    await stack.faults('identity', { maxPerPage: 25 });
    const res = await stack.gql<AnyData>(USERS, { ids: [...ids, 'auth0|nobody'] });
    expect(res.body.errors).toBeUndefined();
    const users = res.body.data!.users as (AnyData | null)[];
    expect(users.slice(0, 60).map((u) => u?.name)).toEqual(ids.map((_, i) => stack.upstreams.dataset.users[100 + i]!.name));
    expect(users[60]).toBeNull();
    // 60 matches at 25 a page: three calls.
    expect(calls(await stack.stats('identity'), 'GET /api/v2/users')).toBe(3);
  });

  it('userList: shorter pages, the same users in the same order, none twice', async () => {
    const clean = await firstUsersOfList(150);
    await stack.faults('identity', { maxPerPage: 30 });
    const capped = await firstUsersOfList(150);
    expect(capped.ids).toEqual(clean.ids);
    expect(new Set(capped.ids).size).toBe(150);
    expect(capped.requests).toBeGreaterThan(clean.requests);
  });
});

describe('a vendor, or a proxy before it, that refuses long URLs (414)', () => {
  it('a bulk lookup is asked again in halves, and later ones are cut that small from the start', async () => {
    const QUERY = `query($ids: [ID!]!) { users(ids: $ids) { id name unreadNotificationCount } }`;
    await stack.faults('identity', { maxUrlBytes: 1500 });
    await stack.faults('notifications', { maxUrlBytes: 1200 });
    const refused = async () => {
      const [identity, notifications] = await Promise.all([stack.stats('identity'), stack.stats('notifications')]);
      return (identity.routes['GET /api/v2/users']?.statuses['414'] ?? 0) + (notifications.routes['GET /v1/unread-counts']?.statuses['414'] ?? 0);
    };
    const shrinks: number[] = [];
    for (const [round, from] of [100, 200].entries()) {
      const ids = Array.from({ length: 60 }, (_, i) => stack.userId(from + i));
      const before = await refused();
      const res = await stack.gql<AnyData>(QUERY, { ids });
      expect(res.body.errors).toBeUndefined();
      const users = res.body.data!.users as AnyData[];
      expect(users.map((u) => u.name)).toEqual(ids.map((_, i) => stack.upstreams.dataset.users[from + i]!.name));
      expect(users.every((u) => typeof u.unreadNotificationCount === 'number')).toBe(true);
      // The first lookup learns the size; the second is cut to it before asking.
      if (round === 0) expect(await refused()).toBeGreaterThan(before);
      else expect(await refused()).toBe(before);
      shrinks.push(stack.logs.map((l) => JSON.parse(l) as AnyData).filter((l) => l.msg?.includes('refused a URL as too long')).length);
    }
    // Each shrink said once, at info, by source and route; none in the second round.
    expect(shrinks[0]).toBeGreaterThan(0);
    expect(shrinks[1]).toBe(shrinks[0]);
    const said = stack.logs.map((l) => JSON.parse(l) as AnyData).filter((l) => l.msg?.includes('refused a URL as too long'));
    expect(said.every((l) => l.level === 30)).toBe(true);
    expect(new Set(said.map((l) => `${l.source} ${l.route}`))).toEqual(new Set(['identity GET /api/v2/users?q', 'notifications GET /v1/unread-counts']));
    const sizes = said.map((l) => l.maxIds as number);
    expect(sizes.every((n) => n < 60)).toBe(true);
  });
});

describe('a vendor, or a proxy before it, that refuses large bodies (413)', () => {
  it("analytics' bulk metrics query is asked again in halves, and later ones are cut that small from the start", async () => {
    const QUERY = `query($ids: [ID!]!) { users(ids: $ids) { id metrics { pageViews } } }`;
    const idsFrom = (from: number) => Array.from({ length: 60 }, (_, i) => stack.userId(from + i));
    const metricsOf = async (ids: string[]) => {
      const res = await stack.gql<AnyData>(QUERY, { ids });
      expect(res.body.errors).toBeUndefined();
      return res.body.data!.users as AnyData[];
    };
    // What a vendor that takes the whole body answers (a seeded user or two has no metrics: null either way).
    const clean = [await metricsOf(idsFrom(300)), await metricsOf(idsFrom(400))];
    expect(clean.flat().filter((u) => typeof u.metrics?.pageViews === 'number').length).toBeGreaterThan(100);
    // 60 ids are ~2 KB of JSON; 30 fit.
    await stack.faults('analytics', { maxBodyBytes: 1200 });
    const route = 'POST /v1/metrics/query';
    const refused = async () => (await stack.stats('analytics')).routes[route]?.statuses['413'] ?? 0;
    const said = () => stack.logs.map((l) => JSON.parse(l) as AnyData).filter((l) => l.msg?.includes('refused a body as too large'));
    for (const [round, from] of [300, 400].entries()) {
      const before = await refused();
      expect(await metricsOf(idsFrom(from))).toEqual(clean[round]);
      // The first lookup learns the size; the second is cut to it before asking.
      if (round === 0) expect(await refused()).toBeGreaterThan(before);
      else expect(await refused()).toBe(before);
    }
    const lines = said();
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.every((l) => l.level === 30 && l.source === 'analytics' && l.route === route && l.status === 413 && l.maxIds < 60)).toBe(true);
  });
});

describe('notifications whose pages are smaller than asked (only the page length and rel="next" tell)', () => {
  const NOTIFICATIONS = `query($id: ID!, $after: String) { user(id: $id) { notifications(first: 20, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { node { id } } } } }`;

  async function allNotifications(userId: string): Promise<string[]> {
    const ids: string[] = [];
    let after: string | null = null;
    for (let round = 0; round < 30; round++) {
      const res: GraphQLResponse<AnyData> = await stack.gql<AnyData>(NOTIFICATIONS, { id: userId, after });
      expect(res.body.errors).toBeUndefined();
      const page: AnyData = res.body.data!.user.notifications;
      ids.push(...page.edges.map((e: AnyData) => e.node.id as string));
      if (!page.pageInfo.hasNextPage) return ids;
      after = page.pageInfo.endCursor;
    }
    throw new Error(`paging never ended: ${ids.length} notifications read`);
  }

  it('paging through gives every notification once, in order, as against a vendor that honours per_page', async () => {
    const index = stack.upstreams.dataset.users.findIndex((_, i) => stack.upstreams.dataset.notificationsOf(i).length >= 45);
    expect(index).toBeGreaterThanOrEqual(0);
    const userId = stack.userId(index);
    const clean = await allNotifications(userId);
    expect(clean).toHaveLength(stack.upstreams.dataset.notificationsOf(index).length);
    await stack.faults('notifications', { maxPerPage: 7 });
    const capped = await allNotifications(userId);
    expect(capped).toEqual(clean);
    expect(calls(await stack.stats('notifications'), 'GET /v1/users/:id/notifications')).toBeGreaterThan(clean.length / 20);
  });
});

describe('a vendor that lists an item twice in one window (a replica, or an item added while two pages were read)', () => {
  // Its own server: the one above has learned a 7-item page from the vendor that paged tighter.
  const stack = sharedStack();
  const WINDOW = `query($id: ID!, $after: String) { user(id: $id) { notifications(first: 60, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { node { id } } } } }`;
  const TWENTY = `query($id: ID!, $after: String) { user(id: $id) { notifications(first: 20, after: $after) { pageInfo { hasNextPage endCursor } edges { node { id } } } } }`;

  it('each notification once; the end cursor continues after the repeat, not before it', async () => {
    const index = stack.upstreams.dataset.users.findIndex((_, i) => {
      const n = stack.upstreams.dataset.notificationsOf(i).length;
      return n >= 30 && n < 60;
    });
    const userId = stack.userId(index);
    const held = stack.upstreams.dataset.notificationsOf(index).length;
    // Every page comes back reversed with its first row repeated at its end: the window holds the whole list and the repeat.
    await stack.faults('notifications', { jumbleLists: true, routes: ['GET /v1/users/:id/notifications'] });
    const res = await stack.gql<AnyData>(WINDOW, { id: userId, after: null });
    expect(res.body.errors).toBeUndefined();
    const page: AnyData = res.body.data!.user.notifications;
    const ids = page.edges.map((e: AnyData) => e.node.id as string);
    expect(ids).toHaveLength(held);
    expect(new Set(ids).size).toBe(held);
    // The repeat held the vendor's last position: the next window starts past it, and is empty.
    const next = await stack.gql<AnyData>(WINDOW, { id: userId, after: page.pageInfo.endCursor });
    expect(next.body.data!.user.notifications.edges).toEqual([]);
    expect(next.body.data!.user.notifications.pageInfo.hasNextPage).toBe(false);
  });

  it('a full page with a row repeated is per_page honoured, not a vendor of another page size: paging through reads each page once', async () => {
    const { dataset } = stack.upstreams;
    const index = dataset.users.findIndex((_, i) => i > 100 && dataset.notificationsOf(i).length >= 45);
    const userId = stack.userId(index);
    const route = 'GET /v1/users/:id/notifications';
    const before = calls(await stack.stats('notifications'), route);
    // Every page comes back reversed with its first row repeated at its end: per_page + 1 rows.
    await stack.faults('notifications', { jumbleLists: true, routes: [route] });
    const ids = await pageThroughOn(stack, TWENTY, { id: userId }, (d) => d.user.notifications, Infinity);
    const held = dataset.notificationsOf(index).map((n) => n.id);
    expect(ids).toHaveLength(held.length);
    expect([...ids].sort()).toEqual([...held].sort());
    // One vendor page a window. Taken for a vendor that ignores per_page, each repeat made its page size one larger
    // (21, 22, …): windows planned again, placed by the wrong size, and a warn line each time.
    expect(calls(await stack.stats('notifications'), route) - before).toBe(Math.ceil(held.length / 20));
    expect(stack.logs.some((l) => l.includes('ignores per_page'))).toBe(false);
  });

  it('notifications paging tighter than asked and repeating a row: paging through gives each notification once', async () => {
    const { dataset } = stack.upstreams;
    const index = dataset.users.findIndex((_, i) => i > 200 && dataset.notificationsOf(i).length >= 40);
    // Pages of at most 7, each reversed with its first row repeated at its end (8 rows).
    await stack.faults('notifications', { maxPerPage: 7, jumbleLists: true, routes: ['GET /v1/users/:id/notifications'] });
    const ids = await pageThroughOn(stack, TWENTY, { id: stack.userId(index) }, (d) => d.user.notifications, Infinity);
    // Every page 8 rows: placed as pages of 8 (the vendor's size as its rows say it), each notification still once.
    const held = dataset.notificationsOf(index).map((n) => n.id);
    expect(ids).toHaveLength(held.length);
    expect([...ids].sort()).toEqual([...held].sort());
  });

  it('identity paging tighter than asked and repeating a row: every user found, and userList pages through them all', async () => {
    const PAGE = `query($first: Int!, $after: String) { userList(first: $first, after: $after) { pageInfo { hasNextPage endCursor } edges { node { id } } } }`;
    const listed = async (first: number, count: number) => {
      const ids: string[] = [];
      let after: string | null = null;
      for (let round = 0; round < 40 && ids.length < count; round++) {
        const res: GraphQLResponse<AnyData> = await stack.gql<AnyData>(PAGE, { first, after });
        expect(res.body.errors).toBeUndefined();
        const page: AnyData = res.body.data!.userList;
        ids.push(...page.edges.map((e: AnyData) => e.node.id as string));
        expect(page.pageInfo.hasNextPage).toBe(true);
        after = page.pageInfo.endCursor;
      }
      return ids.slice(0, count);
    };
    // 140: twenty of the vendor's pages of 7, whose rows come in another order within each.
    const clean = await listed(50, 140);
    const ids = Array.from({ length: 60 }, (_, i) => stack.userId(300 + i));
    // Pages of at most 7 whatever per_page asks, each reversed with its first row repeated at its end (8 rows).
    await stack.faults('identity', { maxPerPage: 7, jumbleLists: true });
    const res = await stack.gql<AnyData>(USERS, { ids: [...ids, 'auth0|nobody'] });
    expect(res.body.errors).toBeUndefined();
    const users = res.body.data!.users as (AnyData | null)[];
    // Before, the first page's 8 rows read as a page size of 8: eight pages were asked, 56 users read, and the
    // four past them were "no such user".
    expect(users.slice(0, 60).map((u) => u?.name)).toEqual(ids.map((_, i) => stack.upstreams.dataset.users[300 + i]!.name));
    expect(users[60]).toBeNull();
    // Before, a page of 8 rows said nothing of the vendor's 7: windows were placed by per_page, and one past the
    // first came back empty, its next page promised without a cursor to it. And placed, the repeated row took the
    // next page's first place: paging through, one user in every 14 was never seen.
    const jumbled = await listed(20, 140);
    expect(new Set(jumbled).size).toBe(140);
    expect([...jumbled].sort()).toEqual([...clean].sort());
  });

  it("events: each once, the same ones as the vendor's own order gives", async () => {
    const EVENTS = `query($id: ID!) { user(id: $id) { events(first: 100) { pageInfo { hasNextPage } edges { node { id } } } } }`;
    // Fewer events than the window: the vendor's one page, and its repeated row, fall inside it.
    const index = stack.upstreams.dataset.users.findIndex((_, i) => {
      const n = stack.upstreams.dataset.eventsOf(i).length;
      return n > 1 && n < 100;
    });
    const userId = stack.userId(index);
    const ids = async () => ((await stack.gql<AnyData>(EVENTS, { id: userId })).body.data!.user.events.edges as AnyData[]).map((e) => e.node.id as string);
    const plain = await ids();
    await stack.faults('analytics', { jumbleLists: true, routes: ['GET /v1/users/:id/events'] });
    const jumbled = await ids();
    expect(jumbled).toHaveLength(stack.upstreams.dataset.eventsOf(index).length);
    expect([...jumbled].sort()).toEqual([...plain].sort());
  });
});

describe('a vendor that ignores per_page and pages by its own default (a renamed parameter, a proxy that strips it)', () => {
  // Its own server: the ones above have learned page sizes from other vendors.
  const stack = sharedStack();
  const NOTIFICATIONS = `query($id: ID!, $after: String) { user(id: $id) { notifications(first: 20, after: $after) { pageInfo { hasNextPage endCursor } edges { node { id } } } } }`;
  const USERS = `query($after: String) { userList(first: 20, after: $after) { pageInfo { hasNextPage endCursor } edges { node { id } } } }`;

  const freshStack = stackPool();
  const pageThrough = (query: string, variables: Record<string, unknown>, at: (data: AnyData) => AnyData, most: number) => pageThroughOn(stack, query, variables, at, most);

  it('notifications (only the page length tells): every notification once, in order, as against one that honours it', async () => {
    const index = stack.upstreams.dataset.users.findIndex((_, i) => stack.upstreams.dataset.notificationsOf(i).length >= 45);
    const userId = stack.userId(index);
    const listOf = () => pageThrough(NOTIFICATIONS, { id: userId }, (d) => d.user.notifications, 1000);
    const clean = await listOf();
    expect(clean).toHaveLength(stack.upstreams.dataset.notificationsOf(index).length);
    await stack.faults('notifications', { stripParams: ['per_page'], routes: ['GET /v1/users/:id/notifications'] });
    expect(await listOf()).toEqual(clean);
  });

  it('notifications, learnt first from a list shorter than its page (only "at least"), then from a longer one', async () => {
    // A fresh process: the test above taught this one the size already.
    const fresh = await freshStack();
    const sizes = fresh.upstreams.dataset.users.map((_, i) => fresh.upstreams.dataset.notificationsOf(i).length);
    const short = sizes.findIndex((n) => n > 20 && n < 30);
    const long = sizes.findIndex((n) => n >= 45);
    const listOf = (index: number) => pageThroughOn(fresh, NOTIFICATIONS, { id: fresh.userId(index) }, (d) => d.user.notifications, 1000);
    const clean = [await listOf(short), await listOf(long)];
    await fresh.faults('notifications', { stripParams: ['per_page'], routes: ['GET /v1/users/:id/notifications'] });
    expect([await listOf(short), await listOf(long)]).toEqual(clean);
    expect(clean.map((ids) => ids.length)).toEqual([sizes[short], sizes[long]]);
  });

  it('notifications, a later window asked first (as another process may be): found where the total says they are', async () => {
    const fresh = await freshStack();
    const index = fresh.upstreams.dataset.users.findIndex((_, i) => {
      const n = fresh.upstreams.dataset.notificationsOf(i).length;
      return n > 14 && n < 30;
    });
    const WINDOW = `query($id: ID!, $after: String) { user(id: $id) { notifications(first: 7, after: $after) { pageInfo { hasNextPage } edges { node { id } } } } }`;
    const read = async () => (await fresh.gql<AnyData>(WINDOW, { id: fresh.userId(index), after: notificationCursor({ offset: 7 }) })).body.data!.user.notifications;
    const clean = await read();
    expect(clean.edges).toHaveLength(7);
    await fresh.faults('notifications', { stripParams: ['per_page'], routes: ['GET /v1/users/:id/notifications'] });
    // Asked as page 2 of 7, the vendor's page 2 of 30 is empty: the window read as the end of the list.
    expect(await read()).toEqual(clean);
  });

  it("userList (identity's limit and start tell): the same users in the same order", async () => {
    const clean = await pageThrough(USERS, {}, (d) => d.userList, 120);
    await stack.faults('identity', { stripParams: ['per_page'], routes: ['GET /api/v2/users'] });
    expect(await pageThrough(USERS, {}, (d) => d.userList, 120)).toEqual(clean);
  });
});

describe('a vendor that lists only the first results of a search (Auth0: 1,000) and refuses a page reaching past them', () => {
  // Its own server: the limit, once learnt, is kept by the process.
  const stack = sharedStack();
  const LIST_30 = `query($after: String) { userList(first: 30, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { node { id } } } }`;

  it('userList serves every user before the limit once, in order, and ends there; a cursor past it is BAD_USER_INPUT', async () => {
    await stack.faults('identity', { maxResults: 100 });
    const before = calls(await stack.stats('identity'), 'GET /api/v2/users');
    // Two windows asked together, both crossing the limit: each holds the users before it, and says no more follow.
    const together = await Promise.all([75, 90].map((offset) => stack.gql<AnyData>(LIST_30, { after: offsetCursor('users', offset) })));
    expect(together.map((r) => r.body.errors)).toEqual([undefined, undefined]);
    expect(together.map((r) => [r.body.data!.userList.edges.length, r.body.data!.userList.pageInfo.hasNextPage])).toEqual([
      [25, false],
      [10, false],
    ]);
    const ids: string[] = [];
    const hasNext: boolean[] = [];
    let after: string | null = null;
    for (let round = 0; round < 10; round++) {
      const res: GraphQLResponse<AnyData> = await stack.gql<AnyData>(LIST_30, { after });
      expect(res.body.errors).toBeUndefined();
      const page: AnyData = res.body.data!.userList;
      expect(page.totalCount).toBe(stack.upstreams.dataset.users.length);
      ids.push(...page.edges.map((e: AnyData) => e.node.id as string));
      hasNext.push(page.pageInfo.hasNextPage);
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    // Windows at 0, 30, 60 and 90: the last holds the ten users before the limit, and says no more can be listed.
    expect(hasNext).toEqual([true, true, true, false]);
    expect(ids).toEqual(stack.upstreams.dataset.users.slice(0, 100).map((u) => u.user_id));
    // One or two refused pages, one bisection below them (at most 9 one-user pages), the windows planned again, and
    // the first three of the four in order (the fourth, at 90, was kept).
    const listCalls = calls(await stack.stats('identity'), 'GET /api/v2/users') - before;
    expect(listCalls).toBeGreaterThanOrEqual(8);
    expect(listCalls).toBeLessThanOrEqual(16);
    const warned = stack.logs.filter((l) => l.includes('lists only its first 100 users'));
    expect(warned).toHaveLength(1);
    expect(warned[0]).toContain('"level":40');

    const past = await stack.gql<AnyData>(LIST_30, { after: offsetCursor('users', 120) });
    expect(past.body.errors!.map((e) => [e.path!.join('.'), e.extensions!.code, e.extensions!.argument])).toEqual([['userList', 'BAD_USER_INPUT', 'after']]);
    expect(past.body.errors![0]!.message).toContain('first 100 users');
    // Known now: nothing is asked of the vendor for a window past it, and no second warning.
    const known = calls(await stack.stats('identity'), 'GET /api/v2/users');
    await stack.gql<AnyData>(LIST_30, { after: offsetCursor('users', 200) });
    expect(calls(await stack.stats('identity'), 'GET /api/v2/users')).toBe(known);
    expect(stack.logs.filter((l) => l.includes('lists only its first'))).toHaveLength(1);
  });

  it('a 400 on a first page is not taken for a listing limit: the window fails typed, nothing learnt', async () => {
    await stack.faults('identity', { errorRate: 1, errorStatus: 400, routes: ['GET /api/v2/users'] });
    const before = calls(await stack.stats('identity'), 'GET /api/v2/users');
    const res = await stack.gql<AnyData>(`{ userList(first: 10) { edges { node { id } } } }`);
    expect(res.body.errors!.map((e) => [e.path!.join('.'), e.extensions!.code])).toEqual([['userList', 'SOURCE_BAD_RESPONSE']]);
    expect(calls(await stack.stats('identity'), 'GET /api/v2/users') - before).toBe(1);
  });
});

describe('a vendor that ignores `page` and answers every page with its first (a renamed parameter, a proxy that strips it)', () => {
  const stack = sharedStack();
  const NOTIFICATIONS = `query($id: ID!, $after: String) { user(id: $id) { name notifications(first: 20, after: $after) { edges { node { id } } } } }`;
  const codes = (res: GraphQLResponse<AnyData>) => res.body.errors?.map((e) => [e.path!.join('.'), e.extensions!.code]);

  it('notifications: a window past the first page fails typed (its Link says another page), the first still reads', async () => {
    const many = stack.upstreams.dataset.users.findIndex((_, i) => stack.upstreams.dataset.notificationsOf(i).length >= 45);
    const few = stack.upstreams.dataset.users.findIndex((_, i) => {
      const n = stack.upstreams.dataset.notificationsOf(i).length;
      return n > 0 && n < 20;
    });
    await stack.faults('notifications', { stripParams: ['page'], routes: ['GET /v1/users/:id/notifications'] });
    const first = await stack.gql<AnyData>(NOTIFICATIONS, { id: stack.userId(many) });
    expect(first.body.errors).toBeUndefined();
    expect(first.body.data!.user.notifications.edges).toHaveLength(20);
    // rel="next" names page 2 on the answer to page 2: it was page 1.
    const second = await stack.gql<AnyData>(NOTIFICATIONS, { id: stack.userId(many), after: notificationCursor({ offset: 20 }) });
    expect(codes(second)).toEqual([['user.notifications', 'SOURCE_BAD_RESPONSE']]);
    expect(second.body.data!.user.name).toBe(stack.upstreams.dataset.users[many]!.name);
    // One page in all (no rel="next"): items on a page past its rel="last".
    const past = await stack.gql<AnyData>(NOTIFICATIONS, { id: stack.userId(few), after: notificationCursor({ offset: 20 }) });
    expect(codes(past)).toEqual([['user.notifications', 'SOURCE_BAD_RESPONSE']]);
    expect(stack.logs.filter((l) => l.includes('the page parameter was ignored')).length).toBeGreaterThanOrEqual(2);
    // The same windows from a vendor that honours it: the second holds other notifications, the one past the end none.
    await stack.faults('notifications', {});
    const honoured = await stack.gql<AnyData>(NOTIFICATIONS, { id: stack.userId(many), after: notificationCursor({ offset: 20 }) });
    expect(honoured.body.errors).toBeUndefined();
    const ids = (r: GraphQLResponse<AnyData>) => r.body.data!.user.notifications.edges.map((e: AnyData) => e.node.id as string);
    expect(ids(honoured).some((id: string) => ids(first).includes(id))).toBe(false);
    const honouredPast = await stack.gql<AnyData>(NOTIFICATIONS, { id: stack.userId(few), after: notificationCursor({ offset: 20 }) });
    expect(ids(honouredPast)).toEqual([]);
  });

  it("userList: a window past the first page fails typed (its page's start is another page's), the first still reads", async () => {
    const LIST = `query($after: String) { userList(first: 20, after: $after) { edges { node { id } } } }`;
    await stack.faults('identity', { stripParams: ['page'], routes: ['GET /api/v2/users'] });
    const first = await stack.gql<AnyData>(LIST, {});
    expect(first.body.errors).toBeUndefined();
    expect(first.body.data!.userList.edges).toHaveLength(20);
    const second = await stack.gql<AnyData>(LIST, { after: offsetCursor('users', 40) });
    expect(codes(second)).toEqual([['userList', 'SOURCE_BAD_RESPONSE']]);
    expect(stack.logs.some((l) => l.includes('page=2 was answered with a page that starts at 0'))).toBe(true);
  });
});

describe('identity answering its lists as Auth0 does without include_totals (a bare array of users: no start, limit nor total)', () => {
  const stack = sharedStack();

  it('profiles, an id search holding unknown ids, and userList read as before; the root shows as drift', async () => {
    const USERS_OF = `query($ids: [ID!]!) { users(ids: $ids) { id name } }`;
    const LIST = `query($after: String) { userList(first: 30, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { node { id } } } }`;
    // Windows of 45, so that none of those below (of 30) is kept from before the fault.
    const clean: string[] = [];
    for (let after: string | null = null; clean.length < 90;) {
      const page: AnyData = (await stack.gql<AnyData>(LIST.replace('first: 30', 'first: 45'), { after })).body.data!.userList;
      clean.push(...page.edges.map((e: AnyData) => e.node.id as string));
      after = page.pageInfo.endCursor;
    }
    await stack.faults('identity', { stripParams: ['include_totals'] });

    const dataset = stack.upstreams.dataset.users;
    const res = await stack.gql<AnyData>(USERS_OF, { ids: [stack.userId(300), 'auth0|nobody', stack.userId(301)] });
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data!.users.map((u: AnyData | null) => u?.name ?? null)).toEqual([dataset[300]!.name, null, dataset[301]!.name]);
    // A search that finds none of its ids (an empty array): each unknown, not "the answer did not reach it".
    const none = await stack.gql<AnyData>(USERS_OF, { ids: ['auth0|nobody-else'] });
    expect(none.body.errors).toBeUndefined();
    expect(none.body.data!.users).toEqual([null]);

    const listed: string[] = [];
    const pages: AnyData[] = [];
    for (let after: string | null = null; listed.length < 90;) {
      const r: GraphQLResponse<AnyData> = await stack.gql<AnyData>(LIST, { after });
      expect(r.body.errors).toBeUndefined();
      const page: AnyData = r.body.data!.userList;
      pages.push(page);
      listed.push(...page.edges.map((e: AnyData) => e.node.id as string));
      after = page.pageInfo.endCursor;
    }
    expect(listed).toEqual(clean);
    // No total to read: each count is what was seen, one more while more follow.
    expect(pages.map((p) => [p.pageInfo.hasNextPage, p.totalCount])).toEqual([
      [true, 31],
      [true, 61],
      [true, 91],
    ]);

    const drift: AnyData[] = (await stack.gql<AnyData>(`{ sources { name drift { endpoint kind path seenType expectedType } } }`)).body.data!.sources.find(
      (s: AnyData) => s.name === 'identity',
    ).drift;
    expect(drift).toContainEqual(expect.objectContaining({ kind: 'TYPE_CHANGED', path: '(root)', seenType: 'array', expectedType: 'object' }));
  });
});

describe('a vendor that ignores a filter (a proxy strips unread=true)', () => {
  const stack = sharedStack();
  const UNREAD_ONLY = `query($id: ID!) { user(id: $id) { name notifications(first: 50, unreadOnly: true) { edges { node { id read } } } } }`;

  it('an unread-only window that holds read notifications fails typed, for that field alone, rather than show them as unread', async () => {
    const index = stack.upstreams.dataset.users.findIndex((_, i) => stack.upstreams.dataset.notificationsOf(i).some((n) => n.read));
    const userId = stack.userId(index);
    const clean = await stack.gql<AnyData>(UNREAD_ONLY, { id: userId });
    expect(clean.body.data!.user.notifications.edges.every((e: AnyData) => e.node.read === false)).toBe(true);
    await stack.faults('notifications', { stripParams: ['unread'] });
    const logsBefore = stack.logs.length;
    const res = await stack.gql<AnyData>(UNREAD_ONLY, { id: userId });
    expect(res.body.data!.user.name).toBe(stack.upstreams.dataset.users[index]!.name);
    expect(res.body.data!.user.notifications).toBeNull();
    expect(res.body.errors!.map((e) => [e.path!.join('.'), e.extensions!.code])).toEqual([['user.notifications', 'SOURCE_BAD_RESPONSE']]);
    const warned = stack.logs.slice(logsBefore).filter((l) => l.includes('"level":40') && l.includes('"source":"notifications"'));
    expect(warned).toHaveLength(1);
    expect(warned[0]).toContain('unread=true');
  });

  it('an id search answered without its q (every user, from the first): the ids asked fail typed, not "no such user"', async () => {
    // Past the first 100 users, so the unfiltered first page holds none of them.
    const ids = [stack.userId(300), stack.userId(301)];
    await stack.faults('identity', { stripParams: ['q'], routes: ['GET /api/v2/users'] });
    const res = await stack.gql<AnyData>(`query($ids: [ID!]!) { users(ids: $ids) { id name } }`, { ids });
    // Read as an answer to the search, none of the ids was in it: both users were null, as if they did not exist.
    expect(res.body.errors!.map((e) => [e.path!.join('.'), e.extensions!.code])).toEqual([
      ['users.0.name', 'SOURCE_BAD_RESPONSE'],
      ['users.1.name', 'SOURCE_BAD_RESPONSE'],
    ]);
    expect(res.body.data!.users.map((u: AnyData) => u.id)).toEqual(ids);
  });
});

describe('a cursor-paged vendor that ends its list with an empty next_cursor (as Slack does), not null', () => {
  const stack = sharedStack();

  it('the list ends there: no next page, and no request with an empty cursor', async () => {
    const EVENTS = `query($id: ID!) { user(id: $id) { events(first: 5) { pageInfo { hasNextPage } edges { node { id } } } } }`;
    await stack.faults('analytics', { setFields: { next_cursor: '' }, routes: ['GET /v1/users/:id/events'] });
    const res = await stack.gql<AnyData>(EVENTS, { id: stack.userId(30) });
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data!.user.events.edges.length).toBeGreaterThan(0);
    // Read as a cursor, "" promised a next page, whose request the vendor refused (400 invalid cursor).
    expect(res.body.data!.user.events.pageInfo.hasNextPage).toBe(false);
    const recent = (await stack.stats('analytics')).routes['GET /v1/users/:id/events']!.recent;
    expect(recent.filter((target) => /[?&]cursor=(&|$)/.test(target))).toEqual([]);
  });
});
