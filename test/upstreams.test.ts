import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSimulatedUpstreams, type SimulatedUpstreams, type StatsSnapshot } from '../simulator/index.js';

/** The simulated upstreams against UPSTREAMS.md, over raw HTTP, as any client would see them. */
let up: SimulatedUpstreams;
let identityToken: string;
beforeAll(async () => {
  up = await startSimulatedUpstreams({ tokenTtlSeconds: 1 });
});
afterAll(() => up.close());
beforeEach(async () => {
  for (const u of up.all) await fetch(`${u.url}/__admin/reset`, { method: 'POST' });
  identityToken = await token();
});

async function token(): Promise<string> {
  const res = await fetch(`${up.identity.url}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      grant_type: 'client_credentials',
      client_id: up.credentials.identity.clientId,
      client_secret: up.credentials.identity.clientSecret,
      audience: up.credentials.identity.audience,
    }),
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { access_token: string; token_type: string; expires_in: number };
  expect(body.token_type).toBe('Bearer');
  expect(body.expires_in).toBe(1);
  return body.access_token;
}

const identity = (path: string, init: RequestInit = {}) =>
  fetch(`${up.identity.url}${path}`, { ...init, headers: { authorization: `Bearer ${identityToken}`, ...(init.headers as Record<string, string>) } });
const analytics = (path: string, init: RequestInit = {}) =>
  fetch(`${up.analytics.url}${path}`, {
    ...init,
    headers: { 'x-api-key': up.credentials.analyticsApiKey, 'content-type': 'application/json', ...(init.headers as Record<string, string>) },
  });
const notifications = (path: string, init: RequestInit = {}) =>
  fetch(`${up.notifications.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${up.credentials.notificationsToken}`, 'content-type': 'application/json', ...(init.headers as Record<string, string>) },
  });
const audit = (path: string, init: RequestInit = {}) =>
  fetch(`${up.audit.url}${path}`, {
    ...init,
    headers: { 'x-api-key': up.credentials.auditApiKey, 'content-type': 'application/json', ...(init.headers as Record<string, string>) },
  });
const stats = async (u: { url: string }) => (await (await fetch(`${u.url}/__admin/stats`)).json()) as StatsSnapshot;
const faults = (u: { url: string }, profile: unknown) =>
  fetch(`${u.url}/__admin/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(profile) });

describe('identity (Auth0 Management API v2 dialect)', () => {
  it('OAuth2: wrong credentials are access_denied; calls need a valid, unexpired bearer', async () => {
    const bad = await fetch(`${up.identity.url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'client_credentials', client_id: 'x', client_secret: 'y', audience: up.credentials.identity.audience }),
    });
    expect(bad.status).toBe(401);
    expect(await bad.json()).toMatchObject({ error: 'access_denied' });
    const id = encodeURIComponent(up.dataset.users[0]!.user_id);
    expect((await fetch(`${up.identity.url}/api/v2/users/${id}`)).status).toBe(401);
    expect(await (await identity(`/api/v2/users/${id}`, { headers: { authorization: 'Bearer nope' } })).json()).toEqual({
      statusCode: 401,
      error: 'Unauthorized',
      message: 'Invalid token',
    });
    expect((await identity(`/api/v2/users/${id}`)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1100));
    expect((await identity(`/api/v2/users/${id}`)).status).toBe(401);
  });

  it('GET user, 404 with inexistent_user, URL-encoded ids', async () => {
    const u = up.dataset.users[5]!;
    const res = await identity(`/api/v2/users/${encodeURIComponent(u.user_id)}`);
    expect(await res.json()).toEqual(u);
    const missing = await identity(`/api/v2/users/${encodeURIComponent('auth0|nobody')}`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ statusCode: 404, errorCode: 'inexistent_user' });
  });

  it('Lucene batch search by ids returns the vendor order, omits unknown ids, records the batch size', async () => {
    const ids = [up.dataset.users[9]!.user_id, 'auth0|unknown', up.dataset.users[2]!.user_id];
    const q = `user_id:(${ids.map((i) => `"${i}"`).join(' OR ')})`;
    const res = await identity(`/api/v2/users?q=${encodeURIComponent(q)}&per_page=100&page=0&include_totals=true`);
    const body = (await res.json()) as { users: { user_id: string }[]; total: number; start: number; limit: number; length: number };
    expect(body.users.map((u) => u.user_id)).toEqual([ids[2], ids[0]]);
    expect(body).toMatchObject({ total: 2, start: 0, limit: 100, length: 2 });
    expect((await stats(up.identity)).routes['GET /api/v2/users']!.batchSizes).toEqual([3]);
    const tooMany = `user_id:(${Array.from({ length: 101 }, (_, i) => `"x${i}"`).join(' OR ')})`;
    expect((await identity(`/api/v2/users?q=${encodeURIComponent(tooMany)}`)).status).toBe(400);
    expect((await identity(`/api/v2/users?q=${encodeURIComponent('user_id:("a") OR *')}`)).status).toBe(400);
  });

  it('lists all users by created_at, 0-based pages, per_page at most 100, plain array without include_totals', async () => {
    const p1 = (await (await identity('/api/v2/users?page=1&per_page=10&include_totals=true')).json()) as { users: { user_id: string; created_at: string }[]; total: number };
    expect(p1.total).toBe(1200);
    expect(p1.users.map((u) => u.user_id)).toEqual(up.dataset.users.slice(10, 20).map((u) => u.user_id));
    expect([...p1.users].sort((a, b) => a.created_at.localeCompare(b.created_at))).toEqual(p1.users);
    expect(Array.isArray(await (await identity('/api/v2/users?per_page=2')).json())).toBe(true);
    expect((await identity('/api/v2/users?per_page=101')).status).toBe(400);
  });

  it('PATCH updates name, nickname, picture and refuses anything else', async () => {
    const id = encodeURIComponent(up.dataset.users[50]!.user_id);
    const ok = await identity(`/api/v2/users/${id}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ nickname: 'neo' }) });
    expect(await ok.json()).toMatchObject({ nickname: 'neo' });
    const bad = await identity(`/api/v2/users/${id}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'x@y.z' }) });
    expect(bad.status).toBe(400);
  });

  it('x-ratelimit-* on every response; over the limit 429 with them and no Retry-After', async () => {
    await faults(up.identity, { rateLimitPerSec: 2 });
    const responses = await Promise.all([1, 2, 3, 4].map(() => identity('/api/v2/users?per_page=1')));
    for (const r of responses) {
      expect(r.headers.get('x-ratelimit-limit')).toBe('2');
      expect(Number(r.headers.get('x-ratelimit-reset'))).toBeGreaterThanOrEqual(Math.floor(Date.now() / 1000));
    }
    const limited = responses.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThanOrEqual(1);
    expect(limited[0]!.headers.get('retry-after')).toBeNull();
    expect(limited[0]!.headers.get('x-ratelimit-remaining')).toBe('0');
  });
});

describe('analytics', () => {
  it('401 invalid_api_key without the key', async () => {
    const res = await fetch(`${up.analytics.url}/v1/metrics/query`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: 'invalid_api_key' });
  });

  it('bulk metrics in Unix seconds, unknown ids in missing, at most 100 ids', async () => {
    const known = up.dataset.users[0]!.user_id;
    const res = await analytics('/v1/metrics/query', {
      method: 'POST',
      body: JSON.stringify({ user_ids: [known, 'nope'], from: 1_767_225_600, to: 1_767_225_600 + 3 * 86_400, granularity: 'day' }),
    });
    const body = (await res.json()) as { data: { user_id: string; last_active: number; series: { ts: number }[] }[]; missing: string[] };
    expect(body.missing).toEqual(['nope']);
    expect(body.data[0]!.user_id).toBe(known);
    expect(body.data[0]!.series.map((p) => p.ts)).toEqual([1_767_225_600, 1_767_312_000, 1_767_398_400]);
    expect(Number.isInteger(body.data[0]!.last_active) && body.data[0]!.last_active < 1e11).toBe(true);
    const tooMany = await analytics('/v1/metrics/query', {
      method: 'POST',
      body: JSON.stringify({ user_ids: Array.from({ length: 101 }, (_, i) => `u${i}`), from: 0, to: 86_400, granularity: 'day' }),
    });
    expect(tooMany.status).toBe(400);
  });

  it('events newest first in Unix ms with an opaque next_cursor, limit at most 200', async () => {
    const id = encodeURIComponent(up.dataset.users[1]!.user_id);
    const p1 = (await (await analytics(`/v1/users/${id}/events?limit=3`)).json()) as { data: { ts: number }[]; next_cursor: string };
    expect(p1.data).toHaveLength(3);
    expect(p1.data[0]!.ts).toBeGreaterThan(1e12);
    expect(p1.data[0]!.ts).toBeGreaterThan(p1.data[1]!.ts);
    const p2 = (await (await analytics(`/v1/users/${id}/events?limit=3&cursor=${encodeURIComponent(p1.next_cursor)}`)).json()) as { data: { ts: number }[] };
    expect(p2.data[0]!.ts).toBeLessThan(p1.data[2]!.ts);
    expect((await analytics(`/v1/users/${id}/events?limit=201`)).status).toBe(400);
  });

  it('429 with Retry-After in seconds; 503 as transient trouble', async () => {
    await faults(up.analytics, { rateLimitPerSec: 1 });
    const [, second] = [await analytics('/v1/users/x/events'), await analytics('/v1/users/x/events')];
    expect(second!.status).toBe(429);
    expect(second!.headers.get('retry-after')).toMatch(/^\d+$/);
    await faults(up.analytics, { errorRate: 1 });
    expect((await analytics('/v1/users/x/events')).status).toBe(503);
  });
});

describe('notifications', () => {
  it('pages 1-based with an RFC 8288 Link header of absolute URLs and X-Total-Count; HTTP-dates', async () => {
    const user = up.dataset.users[0]!;
    const all = up.dataset.notificationsOf(0);
    const res = await notifications(`/v1/users/${encodeURIComponent(user.user_id)}/notifications?page=2&per_page=5`);
    const items = (await res.json()) as { id: string; created: string }[];
    expect(items.map((n) => n.id)).toEqual(all.slice(5, 10).map((n) => n.id));
    expect(items[0]!.created).toMatch(/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
    expect(res.headers.get('x-total-count')).toBe(String(all.length));
    const link = res.headers.get('link')!;
    for (const rel of ['next', 'prev', 'first', 'last']) expect(link).toMatch(new RegExp(`<http://[^>]+page=\\d+[^>]*>; rel="${rel}"`));
    const last = Math.ceil(all.length / 5);
    const lastRes = await notifications(`/v1/users/${encodeURIComponent(user.user_id)}/notifications?page=${last}&per_page=5`);
    expect(lastRes.headers.get('link')).not.toContain('rel="next"');
  });

  it('unread counts in bulk, unknown ids count 0', async () => {
    const a = up.dataset.users[3]!.user_id;
    const res = await notifications(`/v1/unread-counts?user_ids=${encodeURIComponent(a)},${encodeURIComponent('auth0|x')}`);
    expect(await res.json()).toEqual({ counts: { [a]: up.dataset.notificationsOf(3).filter((n) => !n.read).length, 'auth0|x': 0 } });
  });

  it('POST with Idempotency-Key: the same key replays byte for byte and creates one; another body is 422', async () => {
    const user = up.dataset.users[60]!.user_id;
    const before = up.dataset.notificationsOf(60).length;
    const send = (body: unknown) => notifications('/v1/notifications', { method: 'POST', headers: { 'idempotency-key': 'k-1' }, body: JSON.stringify(body) });
    const body = { user, title: 'Hi', body: 'There', channel: 'push' };
    const first = await send(body);
    expect(first.status).toBe(201);
    const second = await send(body);
    expect(second.status).toBe(201);
    expect(await second.text()).toBe(await first.text());
    expect(up.dataset.notificationsOf(60).length).toBe(before + 1);
    expect((await send({ ...body, title: 'Other' })).status).toBe(422);
  });

  it('marks read and answers 429 with Retry-After as an HTTP-date', async () => {
    const user = up.dataset.users[61]!;
    const unread = up.dataset
      .notificationsOf(61)
      .filter((n) => !n.read)
      .slice(0, 2)
      .map((n) => n.id);
    const res = await notifications(`/v1/users/${encodeURIComponent(user.user_id)}/notifications/read`, { method: 'POST', body: JSON.stringify({ ids: unread }) });
    expect(await res.json()).toEqual({ updated: unread.length });
    await faults(up.notifications, { rateLimitPerSec: 1 });
    // Three calls within a second fall in at most two one-second windows: one window holds two, and refuses one.
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await notifications('/v1/unread-counts?user_ids=a'));
    const limited = answers.find((r) => r.status === 429)!;
    expect(limited.status).toBe(429);
    expect(Date.parse(limited.headers.get('retry-after')!)).toBeGreaterThan(Date.now() - 1000);
  });
});

describe('audit', () => {
  it('202 with id and received_at; a repeated key is the first response and no duplicate', async () => {
    const event = { actor: 'a', action: 'profile.updated', target: 'auth0|t1', at: new Date().toISOString(), details: { field: 'name' } };
    const post = () => audit('/v1/events', { method: 'POST', headers: { 'idempotency-key': 'audit-1' }, body: JSON.stringify(event) });
    const first = await post();
    expect(first.status).toBe(202);
    const text = await first.text();
    expect(JSON.parse(text)).toMatchObject({ id: expect.any(String), received_at: expect.stringMatching(/Z$/) });
    expect(await (await post()).text()).toBe(text);
    const list = (await (await audit('/v1/events?target=auth0%7Ct1&limit=10')).json()) as { data: unknown[] };
    expect(list.data).toHaveLength(1);
  });
});

describe('faults and stats through the admin endpoint', () => {
  it('adds latency with jitter', async () => {
    await faults(up.analytics, { latencyMs: 150, jitterMs: 20 });
    const started = performance.now();
    await analytics('/v1/users/x/events');
    expect(performance.now() - started).toBeGreaterThanOrEqual(125);
  });

  it('fails a share of requests with the given status, only on the given routes', async () => {
    await faults(up.notifications, { errorRate: 1, errorStatus: 502, routes: ['GET /v1/unread-counts'] });
    expect((await notifications('/v1/unread-counts?user_ids=a')).status).toBe(502);
    expect((await notifications('/v1/users/a/notifications')).status).toBe(200);
  });

  it('malformed bodies: truncated JSON or the wrong shape', async () => {
    await faults(up.notifications, { malformedRate: 1, malformedKind: 'syntax' });
    const text = await (await notifications('/v1/unread-counts?user_ids=a')).text();
    expect(() => JSON.parse(text)).toThrow();
    await faults(up.notifications, { malformedRate: 1, malformedKind: 'shape' });
    expect(await (await notifications('/v1/unread-counts?user_ids=a')).json()).toEqual({ malformed: true });
  });

  it('down: reset drops connections, hang never answers, refuse stops listening for downForMs', async () => {
    await faults(up.audit, { down: 'reset' });
    await expect(audit('/v1/events')).rejects.toThrow();
    await faults(up.audit, { down: 'hang' });
    await expect(audit('/v1/events', { signal: AbortSignal.timeout(300) })).rejects.toThrow();
    await faults(up.audit, { down: 'refuse', downForMs: 400 });
    const refused = await audit('/v1/events').catch((e: Error & { cause?: { code?: string } }) => e.cause?.code);
    expect(refused).toBe('ECONNREFUSED');
    await new Promise((r) => setTimeout(r, 600));
    expect((await audit('/v1/events')).status).toBe(200);
  });

  it('a bad profile is refused with 400', async () => {
    expect((await faults(up.audit, { errorRate: 2 })).status).toBe(400);
    expect((await faults(up.audit, { nonsense: true })).status).toBe(400);
  });

  it('stats count calls per route, statuses, and requests per second', async () => {
    await analytics('/v1/users/x/events');
    await analytics('/v1/nothing-here');
    const s = await stats(up.analytics);
    expect(s.routes['GET /v1/users/:id/events']).toMatchObject({ calls: 1, statuses: { '404': 1 } });
    expect(s.routes['unmatched']!.calls).toBe(1);
    expect(s.totalCalls).toBe(2);
    expect(Object.values(s.perSecond).reduce((a, b) => a + b, 0)).toBe(2);
    expect(s.maxPerSecond).toBeGreaterThanOrEqual(1);
  });

  it('the dataset is seeded: 1,200 users, the same on every start', async () => {
    const again = await startSimulatedUpstreams();
    try {
      expect(again.dataset.users).toHaveLength(1200);
      expect(again.dataset.users.map((u) => u.user_id)).toEqual(up.dataset.users.map((u) => u.user_id));
      expect(again.dataset.notificationsOf(7).map((n) => n.id)).toEqual(up.dataset.notificationsOf(7).map((n) => n.id));
    } finally {
      await again.close();
    }
  });
});
