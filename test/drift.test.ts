import { describe, expect, it } from 'vitest';
import { sharedStack } from './helpers/stack.js';

/**
 * Vendors add, rename and retype fields without notice (UPSTREAMS.md). The
 * server reads what it needs, ignores the rest, nulls a mistyped optional
 * field, fails only the entity whose required field broke, and counts and
 * shows every drift it notices.
 */
const stack = sharedStack({ tuning: { identity: { retryMaxAttempts: 1 }, analytics: { retryMaxAttempts: 1 }, notifications: { retryMaxAttempts: 1 } } });

type AnyData = Record<string, any>;

const DASHBOARD = `query($ids: [ID!]!) { users(ids: $ids) { id name email lastLoginAt metrics { pageViews lastActiveAt } unreadNotificationCount notifications(first: 2) { totalCount edges { node { title } } } events(first: 2) { edges { node { type } } } } }`;
const SOURCES_DRIFT = `{ sources { name drift { endpoint kind path seenType expectedType count } } }`;

async function metricsText(): Promise<string> {
  return (await fetch(stack.url.replace('/graphql', '/metrics'))).text();
}

/** Each error of an answer as [path, code]. */
function errorsAt(body: { errors?: readonly AnyData[] }): [string, string][] {
  return (body.errors ?? []).map((e) => [(e.path as string[]).join('.'), e.extensions.code as string]);
}

function driftOf(data: AnyData, source: string): AnyData[] {
  return data.sources.find((s: AnyData) => s.name === source).drift;
}

describe('schema drift', () => {
  it('extra fields everywhere (objects, arrays of objects, maps keyed by id) change nothing, and are counted at their paths', async () => {
    const ids = [stack.userId(10), stack.userId(11)];
    const clean = await stack.gql<AnyData>(DASHBOARD, { ids });
    expect(clean.body.errors).toBeUndefined();

    for (const name of ['identity', 'analytics', 'notifications'] as const) await stack.faults(name, { extraFields: true });
    const drifted = await stack.gql<AnyData>(DASHBOARD, { ids });
    expect(drifted.status).toBe(200);
    expect(drifted.body.errors).toBeUndefined();
    expect(drifted.body.data).toEqual(clean.body.data);

    const metrics = await metricsText();
    for (const [source, endpoint, path] of [
      ['notifications', 'GET /v1/unread-counts', 'counts.*'],
      ['notifications', 'GET /v1/unread-counts', 'x_drift'],
      ['notifications', 'GET /v1/users/:id/notifications', '[].x_drift'],
      ['identity', 'GET /api/v2/users?q', 'users[].x_drift'],
      ['analytics', 'POST /v1/metrics/query', 'data[].x_drift'],
      ['analytics', 'POST /v1/metrics/query', 'data[].series[].x_drift'],
    ]) {
      expect(metrics).toMatch(
        new RegExp(
          `gateway_upstream_schema_drift_total\\{source="${source}",endpoint="${endpoint!.replace(/[?]/g, '\\?')}",kind="unknown",path="${path!.replace(/[.*[\]]/g, '\\$&')}"\\} [1-9]`,
        ),
      );
    }
    // No id ever becomes a label.
    expect(metrics).not.toContain(ids[0]!);

    const sources = await stack.gql<AnyData>(SOURCES_DRIFT);
    expect(driftOf(sources.body.data!, 'notifications')).toContainEqual(
      expect.objectContaining({ endpoint: 'GET /v1/unread-counts', kind: 'UNKNOWN', path: 'counts.*', seenType: 'object', expectedType: 'number' }),
    );
    // Logged once per new path, at warn, with types and never values.
    const lines = stack.logs.map((l) => JSON.parse(l) as AnyData).filter((l) => l.msg?.includes('API drift') && l.path === 'counts.*');
    expect(lines).toHaveLength(1);
    expect(lines[0]!.level).toBe(40);
    expect(JSON.stringify(lines[0])).not.toContain('2026-12-01');
  });

  it('a retyped optional field is null for that entity, the rest of it answers, and the change is shown', async () => {
    const id = stack.userId(12);
    await stack.faults('identity', { retypeFields: ['email', 'last_login'] });
    await stack.faults('analytics', { retypeFields: ['last_active'] });
    const res = await stack.gql<AnyData>(DASHBOARD, { ids: [id] });
    expect(res.body.errors).toBeUndefined();
    const user = res.body.data!.users[0];
    expect(user).toMatchObject({ id, name: stack.upstreams.dataset.users[12]!.name, email: null, lastLoginAt: null, metrics: { lastActiveAt: null } });
    expect(user.metrics.pageViews).toBeTypeOf('number');
    const sources = await stack.gql<AnyData>(SOURCES_DRIFT);
    expect(driftOf(sources.body.data!, 'identity')).toContainEqual(
      expect.objectContaining({ kind: 'TYPE_CHANGED', path: 'users[].email', seenType: 'number', expectedType: 'string' }),
    );
    expect(driftOf(sources.body.data!, 'analytics')).toContainEqual(
      expect.objectContaining({ kind: 'TYPE_CHANGED', path: 'data[].last_active', seenType: 'string', expectedType: 'Unix seconds' }),
    );
  });

  it('a renamed required field fails only the entities it belongs to, typed, and shows as missing plus unknown', async () => {
    const ids = [stack.userId(13), stack.userId(14)];
    await stack.faults('analytics', { renameFields: { page_views: 'pageviews' } });
    const res = await stack.gql<AnyData>(DASHBOARD, { ids });
    expect(res.status).toBe(200);
    for (const [i] of ids.entries()) {
      expect(res.body.data!.users[i]).toMatchObject({ id: ids[i], name: stack.upstreams.dataset.users[13 + i]!.name, metrics: null });
      expect(res.body.data!.users[i].unreadNotificationCount).toBeTypeOf('number');
    }
    const codes = new Set(res.body.errors!.map((e) => `${e.extensions!.code} ${e.extensions!.source} ${e.path!.at(-1)}`));
    expect([...codes]).toEqual(['SOURCE_BAD_RESPONSE analytics metrics']);
    const drift = driftOf((await stack.gql<AnyData>(SOURCES_DRIFT)).body.data!, 'analytics');
    expect(drift).toContainEqual(expect.objectContaining({ endpoint: 'POST /v1/metrics/query', kind: 'MISSING', path: 'data[].page_views' }));
    expect(drift).toContainEqual(expect.objectContaining({ endpoint: 'POST /v1/metrics/query', kind: 'UNKNOWN', path: 'data[].pageviews', seenType: 'number' }));
  });

  it("a count past GraphQL's 32-bit Int: that entity fails typed, with one warn line naming the field; a header so is unreadable drift", async () => {
    const ids = [stack.userId(15), stack.userId(16)];
    await stack.faults('analytics', { setFields: { page_views: 3_000_000_000 } });
    await stack.faults('notifications', { headers: { 'x-total-count': '3000000000' } });
    const logsBefore = stack.logs.length;
    const res = await stack.gql<AnyData>(DASHBOARD, { ids });
    expect(res.status).toBe(200);
    for (const [i] of ids.entries()) {
      expect(res.body.data!.users[i]).toMatchObject({ id: ids[i], name: stack.upstreams.dataset.users[15 + i]!.name, metrics: null });
      // The header is unreadable: the total is what the pages and their Link say.
      expect(res.body.data!.users[i].notifications.totalCount).toBeLessThan(1000);
    }
    // One typed error per user's metrics (graphql-js' own was one untyped error per Int in the series, every read).
    expect(res.body.errors!.map((e) => `${e.extensions!.code} ${e.extensions!.source} ${e.path!.join('.')}`)).toEqual(
      ids.map((_, i) => `SOURCE_BAD_RESPONSE analytics users.${i}.metrics`),
    );
    const warned = stack.logs.slice(logsBefore).filter((l) => l.includes('"level":40') && l.includes('"source":"analytics"'));
    expect(warned).toHaveLength(1);
    expect(warned[0]).toContain('page_views');
    const drift = (await stack.gql<AnyData>(SOURCES_DRIFT)).body.data!;
    expect(driftOf(drift, 'notifications')).toContainEqual(expect.objectContaining({ endpoint: 'GET /v1/users/:id/notifications', path: 'header X-Total-Count' }));
  });

  it("an event's properties nested 6,000 levels deep (an end user's data): that event's read {}, the rest of the answer stands, one warn line", async () => {
    const EVENTS = `query($id: ID!) { user(id: $id) { name events(first: 3) { edges { node { id properties } } } } }`;
    const depthOf = (value: unknown): number => (typeof value === 'object' && value !== null ? 1 + Math.max(0, ...Object.values(value).map(depthOf)) : 0);
    // 64 levels in all (the properties object and the 63 under its `nested`) are served whole.
    await stack.faults('analytics', { deepProperties: 63 });
    const within = await stack.gql<AnyData>(EVENTS, { id: stack.userId(17) });
    expect(depthOf(within.body.data!.user.events.edges[0].node.properties)).toBe(64);

    await stack.faults('analytics', { deepProperties: 6000 });
    const logsBefore = stack.logs.length;
    const res = await stack.gql<AnyData>(EVENTS, { id: stack.userId(18) });
    // JSON.stringify threw on it: the whole answer was INTERNAL_SERVER_ERROR, with two stacks at error level.
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data!.user.name).toBe(stack.upstreams.dataset.users[18]!.name);
    const [first, ...rest] = res.body.data!.user.events.edges.map((e: AnyData) => e.node.properties);
    expect(first).toEqual({});
    expect(rest.map((p: AnyData) => Object.keys(p).length > 0)).toEqual([true, true]);
    const lines = stack.logs.slice(logsBefore);
    expect(lines.filter((l) => l.includes('"level":50'))).toEqual([]);
    const warned = lines.filter((l) => l.includes('"level":40') && l.includes('"source":"analytics"'));
    expect(warned).toHaveLength(1);
    expect(warned[0]).toContain('data[].properties');
    const drift = driftOf((await stack.gql<AnyData>(SOURCES_DRIFT)).body.data!, 'analytics');
    expect(drift).toContainEqual(
      expect.objectContaining({ endpoint: 'GET /v1/users/:id/events', kind: 'TYPE_CHANGED', path: 'data[].properties', expectedType: 'JSON nested at most 64 levels' }),
    );
  });

  it('timestamps whose unit changed (seconds sent as ms, ms as seconds): each read fails or is null, never a date in the year 56,000 or in 1970', async () => {
    const EVENTS = `query($id: ID!) { user(id: $id) { name metrics { pageViews lastActiveAt series { at } } events(first: 2) { edges { node { occurredAt } } } } }`;
    const warnedOf = (from: number) => stack.logs.slice(from).filter((l) => l.includes('"level":40') && l.includes('"source":"analytics"'));
    // last_active (optional) in ms: null, with the drift shown; the series and events still read.
    await stack.faults('analytics', { setFields: { last_active: 1_733_000_000_000 } });
    const optionalInMs = await stack.gql<AnyData>(EVENTS, { id: stack.userId(19) });
    expect(optionalInMs.body.errors).toBeUndefined();
    // Read as seconds it was +056888-… and served.
    expect(optionalInMs.body.data!.user.metrics.lastActiveAt).toBeNull();
    expect(optionalInMs.body.data!.user.metrics.series.length).toBeGreaterThan(0);
    // Series instants in ms, and event instants in seconds (read as ms, January 1970): that user's field fails typed,
    // with the unit named in the warn line.
    for (const [ts, route, field, hint, user] of [
      [1_733_000_000_000, 'POST /v1/metrics/query', 'metrics', 'looks like milliseconds', 20],
      [1_733_000_000, 'GET /v1/users/:id/events', 'events', 'looks like seconds', 21],
    ] as const) {
      const from = stack.logs.length;
      await stack.faults('analytics', { setFields: { ts }, routes: [route] });
      const res = await stack.gql<AnyData>(EVENTS, { id: stack.userId(user) });
      expect(res.body.data!.user[field]).toBeNull();
      expect(errorsAt(res.body)).toEqual([[`user.${field}`, 'SOURCE_BAD_RESPONSE']]);
      expect(warnedOf(from).some((l) => l.includes(hint))).toBe(true);
    }
    const drift = driftOf((await stack.gql<AnyData>(SOURCES_DRIFT)).body.data!, 'analytics');
    for (const [endpoint, path, unit] of [
      ['POST /v1/metrics/query', 'data[].last_active', 'Unix seconds'],
      ['POST /v1/metrics/query', 'data[].series[].ts', 'Unix seconds'],
      ['GET /v1/users/:id/events', 'data[].ts', 'Unix milliseconds'],
    ]) {
      expect(drift).toContainEqual(expect.objectContaining({ endpoint, kind: 'TYPE_CHANGED', path, seenType: 'number', expectedType: `${unit} (this number is another unit)` }));
    }
  });

  it('an enum value the vendor added (channel "sms"): that notification reads OTHER and the rest of its page stands, shown as drift; OTHER cannot be sent', async () => {
    const QUERY = `query($id: ID!) { user(id: $id) { notifications(first: 5) { edges { node { id channel } } } } }`;
    const id = stack.userId(23);
    const clean = await stack.gql<AnyData>(QUERY, { id });
    await stack.faults('notifications', { setFields: { channel: 'sms' } });
    const res = await stack.gql<AnyData>(QUERY, { id });
    // z.enum refused it: one new channel failed the user's whole window.
    expect(res.body.errors).toBeUndefined();
    const edges = res.body.data!.user.notifications.edges as AnyData[];
    expect(edges.map((e) => e.node.id)).toEqual(clean.body.data!.user.notifications.edges.map((e: AnyData) => e.node.id));
    expect(new Set(edges.map((e) => e.node.channel))).toEqual(new Set(['OTHER']));
    const drift = driftOf((await stack.gql<AnyData>(SOURCES_DRIFT)).body.data!, 'notifications');
    expect(drift).toContainEqual(
      expect.objectContaining({
        endpoint: 'GET /v1/users/:id/notifications',
        kind: 'TYPE_CHANGED',
        path: '[].channel',
        seenType: 'string',
        expectedType: 'one of email, push, in_app',
      }),
    );
    const token = await stack.token({ sub: id, admin: false });
    const send = await stack.gql<AnyData>(`mutation($u: ID!) { sendNotification(input: { userId: $u, title: "t", body: "b", channel: OTHER }) { status } }`, { u: id }, { token });
    expect(send.body.errors![0]!.extensions!.code).toBe('BAD_USER_INPUT');
  });

  it('a 404 that is not the API\'s (a proxy\'s HTML page: a wrong base URL, a route moved) is an error, not "no such user"', async () => {
    const EVENTS = `query($id: ID!) { user(id: $id) { name events(first: 2) { edges { node { id } } } } }`;
    const id = stack.userId(24);
    await stack.faults('analytics', { errorRate: 1, errorStatus: 404, errorBody: 'html', routes: ['GET /v1/users/:id/events'] });
    const logsBefore = stack.logs.length;
    const res = await stack.gql<AnyData>(EVENTS, { id });
    // Read as the vendor's own 404, every user had no events, and nothing said so.
    expect(res.body.data!.user).toMatchObject({ name: stack.upstreams.dataset.users[24]!.name, events: null });
    expect(errorsAt(res.body)).toEqual([['user.events', 'SOURCE_BAD_RESPONSE']]);
    const warned = stack.logs.slice(logsBefore).filter((l) => l.includes('"level":40') && l.includes('"source":"analytics"'));
    expect(warned).toHaveLength(1);
    expect(warned[0]).toContain('not the API');
    // The vendor's own 404 (JSON) still means no such user: null, no error.
    await stack.faults('analytics', {});
    const unknown = await stack.gql<AnyData>(`{ user(id: "auth0|nobody-here") { id events(first: 1) { edges { node { id } } } } }`);
    expect(unknown.body.errors).toBeUndefined();
  });

  it('JSON sent in ISO-8859-1 and labelled so is read in it; a charset nobody knows fails typed', async () => {
    const NAME = `query($id: ID!) { user(id: $id) { name } }`;
    await stack.faults('identity', { latin1: true, setFields: { name: 'Zoë Müller' } });
    // Read as UTF-8, each accented letter was U+FFFD: "Zo� M�ller".
    expect((await stack.gql<AnyData>(NAME, { id: stack.userId(25) })).body.data!.user.name).toBe('Zoë Müller');
    await stack.faults('identity', { headers: { 'content-type': 'application/json; charset=x-unknown-9' } });
    const unknown = await stack.gql<AnyData>(NAME, { id: stack.userId(26) });
    expect(errorsAt(unknown.body)).toEqual([['user.name', 'SOURCE_BAD_RESPONSE']]);
  });

  it('"never" written as a date (Go\'s zero time, a Unix 0) is null, not the year 1 or 1970', async () => {
    await stack.faults('identity', { setFields: { last_login: '0001-01-01T00:00:00Z' } });
    await stack.faults('analytics', { setFields: { last_active: 0 } });
    const res = await stack.gql<AnyData>(DASHBOARD, { ids: [stack.userId(22)] });
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data!.users[0]).toMatchObject({ lastLoginAt: null, metrics: { lastActiveAt: null } });
  });

  it('a bulk answer whose keys are spelled another way (URL-encoded): they read as 0, and the omission shows as drift', async () => {
    const ids = [stack.userId(15), stack.userId(16)];
    const encoded = (id: string) => encodeURIComponent(id);
    await stack.faults('notifications', { renameFields: Object.fromEntries(ids.map((id) => [id, encoded(id)])), routes: ['GET /v1/unread-counts'] });
    const res = await stack.gql<AnyData>(`query($ids: [ID!]!) { users(ids: $ids) { id unreadNotificationCount } }`, { ids });
    // Left out reads as the contract's "unknown ids count 0": wrong, and silent, but for the drift below.
    expect(res.body.data!.users.map((u: AnyData) => u.unreadNotificationCount)).toEqual([0, 0]);
    const drift = driftOf((await stack.gql<AnyData>(SOURCES_DRIFT)).body.data!, 'notifications');
    expect(drift).toContainEqual(
      expect.objectContaining({ endpoint: 'GET /v1/unread-counts', kind: 'MISSING', path: 'counts.*', seenType: 'absent', expectedType: 'a count for each id asked' }),
    );
    expect(await metricsText()).toMatch(/gateway_upstream_schema_drift_total\{source="notifications",endpoint="GET \/v1\/unread-counts",kind="missing",path="counts\.\*"\} [1-9]/);
  });

  it('headers drift too: with a Link that does not parse, paging goes by X-Total-Count, then by whether the page was full; each shows once', async () => {
    const PAGE = `query($id: ID!, $first: Int!) { user(id: $id) { notifications(first: $first) { totalCount pageInfo { hasNextPage } edges { node { title } } } } }`;
    const id = stack.userId(17);
    const page = async (first: number) => {
      const res = await stack.gql<AnyData>(PAGE, { id, first });
      expect(res.body.errors).toBeUndefined();
      return res.body.data!.user.notifications as AnyData;
    };
    const [clean2, clean100] = [await page(2), await page(100)];
    expect(clean2.totalCount).toBeGreaterThan(2);
    expect(clean2.totalCount).toBeLessThan(100);
    expect(clean2.pageInfo.hasNextPage).toBe(true);
    expect(clean100.pageInfo.hasNextPage).toBe(false);
    const from = stack.logs.length;

    // Link unreadable, the total still there: the same answers.
    await stack.faults('notifications', { headers: { link: '<https://vendor.example/v1?page=2; rel=next' } });
    expect(await page(2)).toEqual(clean2);
    expect(await page(100)).toEqual(clean100);

    // Neither: a full page may have a next one, a short one has not; the count is what is known.
    await stack.faults('notifications', { headers: { link: 'garbage', 'x-total-count': null } });
    expect(await page(2)).toMatchObject({ totalCount: 3, pageInfo: { hasNextPage: true }, edges: clean2.edges });
    expect(await page(100)).toEqual(clean100);

    const drift = driftOf((await stack.gql<AnyData>(SOURCES_DRIFT)).body.data!, 'notifications');
    expect(drift).toContainEqual(expect.objectContaining({ endpoint: 'GET /v1/users/:id/notifications', kind: 'TYPE_CHANGED', path: 'header Link', seenType: 'string', count: 4 }));
    expect(drift).toContainEqual(
      expect.objectContaining({ endpoint: 'GET /v1/users/:id/notifications', kind: 'MISSING', path: 'header X-Total-Count', seenType: 'absent', count: 2 }),
    );
    const warned = stack.logs
      .slice(from)
      .map((l) => JSON.parse(l) as AnyData)
      .filter((l) => l.level >= 40);
    expect(warned.map((l) => l.msg)).toEqual([
      'notifications API drift: header Link does not read as RFC 8288 links in GET /v1/users/:id/notifications',
      'notifications API drift: header X-Total-Count missing in GET /v1/users/:id/notifications',
    ]);
  });

  it('a user without its id fails as an error, not as "no such user", and the map keyed by id keeps its readable entries', async () => {
    const ids = [stack.userId(15), stack.userId(16)];
    await stack.faults('identity', { renameFields: { user_id: 'id' } });
    await stack.faults('notifications', { retypeFields: [ids[0]!] });
    const res = await stack.gql<AnyData>(`query($ids: [ID!]!) { users(ids: $ids) { id name unreadNotificationCount } }`, { ids });
    expect(res.status).toBe(200);
    const byPath = new Map(res.body.errors!.map((e) => [e.path!.join('.'), e.extensions!.code]));
    // Identity's fields fail with a typed error; the user is not reported unknown.
    expect(byPath.get('users.0.name')).toBe('SOURCE_BAD_RESPONSE');
    expect(byPath.get('users.1.name')).toBe('SOURCE_BAD_RESPONSE');
    // The retyped count fails its own user only.
    expect(byPath.get('users.0.unreadNotificationCount')).toBe('SOURCE_BAD_RESPONSE');
    expect(res.body.data!.users[1].unreadNotificationCount).toBeTypeOf('number');
    expect(res.body.data!.users.map((u: AnyData) => u.id)).toEqual(ids);
  });
});
