import { Writable } from 'node:stream';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { SourceError } from '../src/errors.js';
import { createLogger } from '../src/logger.js';
import { createSources, type Sources } from '../src/sources/index.js';
import { placeWindow, planFixedPages, planPages, planPagesWithin, VendorPageSize } from '../src/sources/paging.js';
import { retryAfterSeconds } from '../src/sources/rate-limit-headers.js';
import { parseLuceneTerms } from '../simulator/identity.js';
import { ScriptedUpstream, type SeenRequest } from './helpers/scripted-upstream.js';

/**
 * Each source against a vendor that honours UPSTREAMS.md but is not our
 * simulation: other field orders and extra fields, other result orders,
 * timestamps with offsets, differently spelled headers, and bad data.
 */
let vendor: ScriptedUpstream;
let sources: Sources;
const logs: string[] = [];
const SECRET = 'client-secret-that-must-not-leak';

beforeAll(async () => {
  vendor = await new ScriptedUpstream().start();
  const logger = createLogger({ level: 'debug', destination: new Writable({ write: (c: Buffer, _e, done) => (logs.push(c.toString()), done()) }) });
  // Mapping, not policy, is under test here: one attempt, and a breaker that never opens.
  const tuning = loadConfig({
    IDENTITY_TIMEOUT_MS: '500',
    NOTIFICATIONS_TIMEOUT_MS: '500',
    ANALYTICS_TIMEOUT_MS: '500',
    NOTIFICATIONS_RETRY_MAX_ATTEMPTS: '1',
    IDENTITY_RETRY_MAX_ATTEMPTS: '1',
    ANALYTICS_RETRY_MAX_ATTEMPTS: '1',
    NOTIFICATIONS_BREAKER_MIN_CALLS: '100000',
  }).tuning;
  const url = vendor.url;
  sources = createSources(
    {
      identity: { url, clientId: 'cid', clientSecret: SECRET, audience: 'aud' },
      analytics: { url, apiKey: 'analytics-key' },
      notifications: { url, token: 'notif-token' },
      audit: { url, apiKey: 'audit-key' },
    },
    tuning,
    { logger },
  );
});
afterAll(async () => {
  await sources.close();
  await vendor.close();
});
afterEach(() => {
  vendor.seen.length = 0;
});

const path = (r: SeenRequest) => r.url.split('?')[0];
const query = (r: SeenRequest) => new URL(r.url, 'http://x').searchParams;

async function sourceError(p: Promise<unknown>): Promise<SourceError> {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SourceError);
  return error as SourceError;
}

/** Every source at one address, with placeholder credentials and the tuning these settings give; the caller closes it. */
function sourcesAt(url: string, settings: Record<string, string>): Sources {
  return createSources(
    {
      identity: { url, clientId: 'cid', clientSecret: SECRET, audience: 'aud' },
      analytics: { url, apiKey: 'k' },
      notifications: { url, token: 't' },
      audit: { url, apiKey: 'k' },
    },
    loadConfig(settings).tuning,
    { logger: createLogger({ level: 'silent' }) },
  );
}

let tokens = 0;
function identityVendor(users: (q: string | null) => unknown[], opts: { validToken?: () => string } = {}) {
  vendor.script = (req) => {
    if (req.url === '/oauth/token') {
      tokens++;
      expect(JSON.parse(req.body)).toEqual({ grant_type: 'client_credentials', client_id: 'cid', client_secret: SECRET, audience: 'aud' });
      return { body: { access_token: `tok-${tokens}`, token_type: 'Bearer', expires_in: 3600, scope: 'x' } };
    }
    const valid = opts.validToken?.() ?? `tok-${tokens}`;
    if (req.headers.authorization !== `Bearer ${valid}`) return { status: 401, body: { statusCode: 401, error: 'Unauthorized', message: 'Invalid token' } };
    const list = users(query(req).get('q'));
    return { body: { users: list, total: list.length, start: 0, limit: 100, length: list.length, extra: 'ignored' } };
  };
}

describe('identity source', () => {
  it('normalizes users, ignores unknown fields, maps by id whatever the vendor order', async () => {
    identityVendor(() => [
      { user_id: 'auth0|b', name: 'B', created_at: '2024-01-02T05:04:05+02:00', app_metadata: { plan: 'pro' }, identities: [] },
      {
        user_id: 'auth0|a',
        email: 'a@x.io',
        email_verified: true,
        name: 'A',
        nickname: 'a',
        picture: 'https://p/a.png',
        created_at: '2024-01-02T03:04:05.000Z',
        last_login: '2024-02-01T00:00:00Z',
        logins_count: 3,
      },
    ]);
    const found = await sources.identity.usersByIds(['auth0|a', 'auth0|b', 'auth0|c']);
    expect(found.get('auth0|a')).toEqual({
      id: 'auth0|a',
      email: 'a@x.io',
      emailVerified: true,
      name: 'A',
      nickname: 'a',
      avatarUrl: 'https://p/a.png',
      createdAt: '2024-01-02T03:04:05.000Z',
      lastLoginAt: '2024-02-01T00:00:00.000Z',
    });
    expect(found.get('auth0|b')).toMatchObject({ email: null, lastLoginAt: null, createdAt: '2024-01-02T03:04:05.000Z' });
    expect(found.has('auth0|c')).toBe(false);
  });

  it('an id search answered with full pages and a total past the ids asked (a vendor ignoring q) is one call, its users matched by id, the rest errors', async () => {
    const everyone = Array.from({ length: 100 }, (_, i) => ({ user_id: `auth0|${i}`, name: `U${i}`, created_at: '2024-01-02T03:04:05.000Z' }));
    vendor.script = (req) =>
      req.url === '/oauth/token' ? { body: { access_token: `tok-${tokens}`, expires_in: 3600 } } : { body: { users: everyone, total: 5000, start: 0, limit: 100, length: 100 } };
    const before = vendor.seen.length;
    const found = await sources.identity.usersByIds(['auth0|3', 'auth0|7', 'auth0|nobody']);
    expect([...found.keys()].sort()).toEqual(['auth0|3', 'auth0|7', 'auth0|nobody']);
    expect([found.get('auth0|3'), found.get('auth0|7')].map((u) => (u as { name: string }).name)).toEqual(['U3', 'U7']);
    // Users nobody asked for say the search was not applied: an id it lacks is not known to be unknown.
    expect(found.get('auth0|nobody')).toMatchObject({ code: 'SOURCE_BAD_RESPONSE', detail: expect.stringMatching(/98 users not asked for/) });
    expect(vendor.seen.slice(before).filter((r) => r.url.startsWith('/api/'))).toHaveLength(1);
  });

  it('escapes ids inside the Lucene phrase so none can close it or add a clause', async () => {
    identityVendor(() => []);
    const hostile = ['a") OR user_id:("b', 'x\\"y', 'OR *', 'plain'];
    await sources.identity.usersByIds(hostile);
    const search = vendor.seen.find((r) => path(r) === '/api/v2/users')!;
    const terms = parseLuceneTerms(query(search).get('q')!);
    expect(terms).toEqual({ field: 'user_id', values: hostile });
  });

  it('a user read or updated by id, answered with another user, is SOURCE_BAD_RESPONSE, never that user', async () => {
    const other = { user_id: 'auth0|other', name: 'Other', email: 'other@x.io', created_at: '2024-01-02T03:04:05.000Z' };
    vendor.script = (req) => (req.url === '/oauth/token' ? { body: { access_token: 't', expires_in: 60 } } : { body: other });
    for (const read of [sources.identity.userById('auth0|asked'), sources.identity.updateUser('auth0|asked', { name: 'N' })]) {
      const e = await sourceError(read);
      expect(e.code).toBe('SOURCE_BAD_RESPONSE');
      expect(e.detail).toMatch(/the answer is about another user than the one asked$/);
    }
    // The same answer for the user it names is read.
    expect((await sources.identity.userById('auth0|other'))?.name).toBe('Other');
  });

  it('encodes ids in paths, dots included, so "../" cannot climb', async () => {
    vendor.script = (req) => (req.url === '/oauth/token' ? { body: { access_token: 't', expires_in: 60 } } : { status: 404, body: {} });
    expect(await sources.identity.userById('../../admin')).toBeNull();
    const call = vendor.seen.find((r) => r.url.startsWith('/api/'))!;
    expect(call.url).toBe('/api/v2/users/%2E%2E%2F%2E%2E%2Fadmin');
  });

  it('takes a token whose expires_in is a string or absent (RFC 6749 only recommends it); one that is zero or words is refused', async () => {
    const cases: [unknown, 'ok' | 'refused'][] = [
      ['3600', 'ok'],
      [undefined, 'ok'],
      [0, 'refused'],
      ['an hour', 'refused'],
    ];
    for (const [expiresIn, outcome] of cases) {
      vendor.script = (req) =>
        req.url === '/oauth/token'
          ? { body: { access_token: 'tok', token_type: 'Bearer', ...(expiresIn === undefined ? {} : { expires_in: expiresIn }) } }
          : req.headers.authorization === 'Bearer tok'
            ? { body: { users: [{ user_id: 'auth0|a', name: 'A', created_at: '2024-01-02T03:04:05.000Z' }], total: 1, start: 0, limit: 100, length: 1 } }
            : { status: 401, body: {} };
      const fresh = sourcesAt(vendor.url, { IDENTITY_RETRY_MAX_ATTEMPTS: '1' });
      try {
        const read = fresh.identity.usersByIds(['auth0|a']);
        if (outcome === 'ok') expect((await read).get('auth0|a')?.name, String(expiresIn)).toBe('A');
        else expect((await sourceError(read)).code, String(expiresIn)).toBe('SOURCE_BAD_RESPONSE');
      } finally {
        await fresh.close();
      }
    }
  });

  it('a token endpoint that refused is not asked again until its Retry-After, or a doubling backoff, has passed', async () => {
    let tokenCalls = 0;
    let answer: { status: number; headers?: Record<string, string> } | null = { status: 429, headers: { 'retry-after': '1' } };
    vendor.script = (req) => {
      if (req.url === '/oauth/token') {
        tokenCalls++;
        return answer ? { ...answer, body: { error: 'too_many_requests' } } : { body: { access_token: 'tok', expires_in: 3600 } };
      }
      return req.headers.authorization === 'Bearer tok' ? { body: { users: [], total: 0, start: 0, limit: 100, length: 0 } } : { status: 401, body: {} };
    };
    const fresh = sourcesAt(vendor.url, { IDENTITY_RETRY_MAX_ATTEMPTS: '1', IDENTITY_BREAKER_MIN_CALLS: '100000' });
    try {
      // 429 with Retry-After: 1 s. Ten calls in that second (forty took longer than it, now and then, on a busy machine), one token request.
      for (let i = 0; i < 10; i++) expect((await sourceError(fresh.identity.usersByIds([`a-${i}`]))).code).toBe('SOURCE_RATE_LIMITED');
      expect(tokenCalls).toBe(1);
      await new Promise((r) => setTimeout(r, 1050));
      // Then 503s, no wait named: the backoff doubles with each failure in a row (this is the second: 1 s, then 2 s).
      answer = { status: 503 };
      expect((await sourceError(fresh.identity.usersByIds(['b']))).code).toBe('SOURCE_UNAVAILABLE');
      expect(tokenCalls).toBe(2);
      await new Promise((r) => setTimeout(r, 550));
      expect((await sourceError(fresh.identity.usersByIds(['c']))).code).toBe('SOURCE_UNAVAILABLE');
      expect(tokenCalls).toBe(2);
      await new Promise((r) => setTimeout(r, 500));
      expect((await sourceError(fresh.identity.usersByIds(['d']))).code).toBe('SOURCE_UNAVAILABLE');
      expect(tokenCalls).toBe(3);
      // Once it answers, the token is fetched and every call goes through.
      answer = null;
      await new Promise((r) => setTimeout(r, 2050));
      expect((await fresh.identity.usersByIds(['e'])).size).toBe(0);
      expect(tokenCalls).toBe(4);
    } finally {
      await fresh.close();
    }
  });

  it('fetches one token for many concurrent calls, and on a 401 refreshes once and retries once', async () => {
    let valid = 'tok-1';
    tokens = 0;
    identityVendor(() => [], { validToken: () => valid });
    const fresh = sourcesAt(vendor.url, { IDENTITY_RETRY_MAX_ATTEMPTS: '1', ANALYTICS_RETRY_MAX_ATTEMPTS: '1' });
    try {
      await Promise.all(Array.from({ length: 20 }, (_, i) => fresh.identity.usersByIds([`id-${i}`])));
      expect(tokens).toBe(1);
      // The vendor revokes the token: the next call gets 401, fetches a new one, and succeeds.
      valid = 'tok-2';
      const calls = vendor.seen.length;
      await fresh.identity.usersByIds(['x']);
      expect(tokens).toBe(2);
      expect(vendor.seen.slice(calls).map((r) => path(r))).toEqual(['/api/v2/users', '/oauth/token', '/api/v2/users']);
      // A vendor that rejects every token: one retry, then SOURCE_AUTH_FAILED.
      valid = 'never';
      const e = await sourceError(fresh.identity.usersByIds(['y']));
      expect(e.code).toBe('SOURCE_AUTH_FAILED');
      expect(tokens).toBe(3);
    } finally {
      await fresh.close();
    }
    expect(logs.join('')).not.toContain(SECRET);
  });

  it('a vendor that refuses every token: replacements wait 1 s, then 2 s, not one a call; an accepted call resets that; a token expired under many calls is replaced once', async () => {
    let valid = 'tok-1';
    tokens = 0;
    identityVendor(() => [], { validToken: () => valid });
    const fresh = sourcesAt(vendor.url, { IDENTITY_RETRY_MAX_ATTEMPTS: '1', IDENTITY_BREAKER_MIN_CALLS: '100000' });
    const apiCalls = () => vendor.seen.filter((r) => path(r) === '/api/v2/users').length;
    try {
      await fresh.identity.usersByIds(['a']);
      expect(tokens).toBe(1);
      // Expired under twenty calls at once: one replacement, and each call retried with it.
      valid = 'tok-2';
      await Promise.all(Array.from({ length: 20 }, (_, i) => fresh.identity.usersByIds([`b-${i}`])));
      expect(tokens).toBe(2);
      // Now every token is refused (a revoked grant): the first refusal replaces it at once, its replacement's refusal does not.
      valid = 'never';
      for (let i = 0; i < 10; i++) expect((await sourceError(fresh.identity.usersByIds([`c-${i}`]))).code).toBe('SOURCE_AUTH_FAILED');
      expect(tokens).toBe(3);
      // One call each past the first: no retry while the replacement waits.
      const before = apiCalls();
      await sourceError(fresh.identity.usersByIds(['d']));
      expect(apiCalls() - before).toBe(1);
      await new Promise((r) => setTimeout(r, 1050));
      await sourceError(fresh.identity.usersByIds(['e']));
      expect(tokens).toBe(4);
      await new Promise((r) => setTimeout(r, 1050));
      await sourceError(fresh.identity.usersByIds(['f']));
      expect(tokens).toBe(4); // the wait doubled: 2 s now
      await new Promise((r) => setTimeout(r, 1000));
      // The grant is back: the next replacement's call is accepted, and a later expiry is replaced at once again.
      valid = 'tok-5';
      expect((await fresh.identity.usersByIds(['g'])).size).toBe(0);
      expect(tokens).toBe(5);
      valid = 'tok-6';
      expect((await fresh.identity.usersByIds(['h'])).size).toBe(0);
      expect(tokens).toBe(6);
    } finally {
      await fresh.close();
    }
  });

  it('pages: offset windows off page boundaries cost at most two calls and return the exact window', async () => {
    const all = Array.from({ length: 40 }, (_, i) => ({ user_id: `u${i}` }));
    vendor.script = (req) => {
      if (req.url === '/oauth/token') return { body: { access_token: 't', expires_in: 60 } };
      const q = query(req);
      const page = Number(q.get('page'));
      const per = Number(q.get('per_page'));
      return { body: { users: all.slice(page * per, page * per + per), total: all.length } };
    };
    const window = await sources.identity.listUsers(7, 5);
    expect(window.items.map((u) => u.id)).toEqual(['u7', 'u8', 'u9', 'u10', 'u11']);
    expect(window).toMatchObject({ totalCount: 40, hasNextPage: true });
    expect(vendor.seen.filter((r) => path(r) === '/api/v2/users')).toHaveLength(1);
    const end = await sources.identity.listUsers(38, 5);
    expect(end).toMatchObject({ totalCount: 40, hasNextPage: false });
    expect(end.items.map((u) => u.id)).toEqual(['u38', 'u39']);
  });
});

describe('analytics source', () => {
  it('converts Unix seconds to ISO, ignores rows it did not ask for and a missing "missing"', async () => {
    vendor.script = (req) => {
      expect(req.headers['x-api-key']).toBe('analytics-key');
      expect(JSON.parse(req.body)).toEqual({ user_ids: ['u1', 'u2'], from: 1_704_067_200, to: 1_704_153_600, granularity: 'hour' });
      return {
        body: {
          data: [
            { user_id: 'stranger', page_views: 1, sessions: 1, avg_session_seconds: 1, conversion_rate: 0, series: [] },
            {
              series: [{ ts: 1_704_067_200, page_views: 2, sessions: 1, bounce: 0 }],
              user_id: 'u2',
              page_views: 2,
              sessions: 1,
              avg_session_seconds: 12.5,
              conversion_rate: 0.5,
              last_active: 1_704_100_000,
              cohort: 'x',
            },
          ],
        },
      };
    };
    const omitted = () => sources.analytics.drift.list().filter((d) => d.path === 'data[].user_id' && d.kind === 'missing').length;
    expect(omitted()).toBe(0);
    const found = await sources.analytics.metrics(['u1', 'u2'], { fromSec: 1_704_067_200, toSec: 1_704_153_600, granularity: 'HOUR' });
    expect([...found.keys()]).toEqual(['u2']);
    // u1 is neither a row nor listed missing, where the contract has one or the other for each id: that shows as drift.
    expect(omitted()).toBe(1);
    // The entity keeps its series compact; it reads and serializes (L2, clients) as the plain one.
    expect(JSON.parse(JSON.stringify(found.get('u2')))).toEqual({
      pageViews: 2,
      sessions: 1,
      avgSessionSeconds: 12.5,
      conversionRate: 0.5,
      lastActiveAt: new Date(1_704_100_000_000).toISOString(),
      series: [{ at: '2024-01-01T00:00:00.000Z', pageViews: 2, sessions: 1 }],
    });
  });

  it('events: Unix ms to ISO, numeric ids as strings, the vendor cursor passed back URL-encoded', async () => {
    vendor.script = () => ({ body: { data: [{ id: 17, type: 'click', ts: 1_704_067_200_123 }], next_cursor: 'a+b/c=' } });
    const page = await sources.analytics.events('u/1', 5, 'c+/=');
    expect(page).toEqual({ events: [{ id: '17', type: 'click', occurredAt: '2024-01-01T00:00:00.123Z', properties: {} }], nextCursor: 'a+b/c=' });
    expect(vendor.seen[0]!.url).toBe('/v1/users/u%2F1/events?limit=5&cursor=c%2B%2F%3D');
  });
});

describe('notifications source', () => {
  it('reads HTTP-dates, the Link header however it is spelled, and X-Total-Count', async () => {
    vendor.script = (req) => {
      expect(req.headers.authorization).toBe('Bearer notif-token');
      return {
        headers: { Link: '<https://v.example/x?page=3>;rel=next, <https://v.example/x?page=9>; rel="last"', 'X-Total-Count': '45' },
        body: [{ id: 'n1', user: 'u1', title: 'T', body: 'B', channel: 'in_app', read: false, created: 'Tue, 02 Jan 2024 03:04:05 GMT', priority: 'high' }],
      };
    };
    const page = await sources.notifications.list('u1', 0, 1, false);
    expect(page).toEqual({
      items: [{ id: 'n1', userId: 'u1', title: 'T', body: 'B', channel: 'IN_APP', read: false, createdAt: '2024-01-02T03:04:05.000Z' }],
      totalCount: 45,
      // The vendor's own count, kept apart: what tells a cursor's next window that the list changed.
      vendorTotal: 45,
      hasNextPage: true,
    });
    expect(query(vendor.seen[0]!).get('page')).toBe('1');
  });

  it('without a next link, and the window at the page end, there is no next page', async () => {
    vendor.script = () => ({ headers: { link: '<https://v/x?page=1>; rel="first"', 'x-total-count': '1' }, body: [] });
    expect(await sources.notifications.list('u1', 0, 5, true)).toEqual({ items: [], totalCount: 1, vendorTotal: 1, hasNextPage: false });
    expect(query(vendor.seen[0]!).get('unread')).toBe('true');
  });

  it('X-Total-Count sent twice (a proxy adding its copy): the same value is read; two values are unreadable drift', async () => {
    vendor.script = () => ({ headers: { link: '<https://v/x?page=1>; rel="first"', 'x-total-count': ['7', '7'] }, body: [] });
    expect(await sources.notifications.list('u1', 0, 5, true)).toMatchObject({ totalCount: 7, vendorTotal: 7 });
    expect(sources.notifications.drift.list().filter((d) => d.path === 'header X-Total-Count')).toEqual([]);
    vendor.script = () => ({ headers: { link: '<https://v/x?page=1>; rel="first"', 'x-total-count': ['7', '8'] }, body: [] });
    expect((await sources.notifications.list('u1', 0, 5, true)).vendorTotal).toBeUndefined();
    expect(sources.notifications.drift.list().filter((d) => d.path === 'header X-Total-Count')).toEqual([expect.objectContaining({ kind: 'type_changed' })]);
  });

  it('unread counts: ids URL-encoded one by one and comma-joined; an id left out counts as absent', async () => {
    vendor.script = () => ({ body: { counts: { 'a,b': 2, 'c|d': 0 } } });
    const counts = await sources.notifications.unreadCounts(['a,b', 'c|d', 'e']);
    expect(query(vendor.seen[0]!).get('user_ids')).toBe('a,b,c|d,e'); // decoded view
    expect(vendor.seen[0]!.url).toContain('user_ids=a%2Cb,c%7Cd,e');
    expect([...counts]).toEqual([
      ['a,b', 2],
      ['c|d', 0],
    ]);
  });
});

describe('bad upstream data and statuses become typed errors', () => {
  it.each([
    ['truncated JSON', { raw: '{"counts": {"a": ' }, 'SOURCE_BAD_RESPONSE', false],
    ['HTML instead of JSON', { raw: '<html>oops</html>' }, 'SOURCE_BAD_RESPONSE', false],
    ['no counts at all', { body: { totals: {} } }, 'SOURCE_BAD_RESPONSE', false],
    ['400', { status: 400, body: { error: 'bad' } }, 'SOURCE_BAD_RESPONSE', false],
    ['403', { status: 403, body: {} }, 'SOURCE_AUTH_FAILED', false],
    ['408', { status: 408, body: {} }, 'SOURCE_TIMEOUT', true],
    ['500', { status: 500, body: {} }, 'SOURCE_UNAVAILABLE', true],
    ['503 with Retry-After', { status: 503, headers: { 'retry-after': '7' }, body: {} }, 'SOURCE_UNAVAILABLE', true],
  ] as const)('%s', async (_name, reply, code, retryable) => {
    vendor.script = () => reply;
    const e = await sourceError(sources.notifications.unreadCounts(['a']));
    expect({ code: e.code, retryable: e.retryable, source: e.source }).toEqual({ code, retryable, source: 'notifications' });
    if ('headers' in reply) expect(e.retryAfterSeconds).toBe(Number(reply.headers['retry-after']));
    expect(e.message).not.toContain('oops');
  });

  it.each([
    [
      "Auth0's errorCode",
      { statusCode: 400, error: 'Bad Request', message: 'You can only page through the first 1000 records.', errorCode: 'invalid_paging' },
      ' (invalid_paging)',
    ],
    ['a token in error', { error: 'invalid_api_key' }, ' (invalid_api_key)'],
    ["Stripe's error.code", { error: { type: 'invalid_request_error', code: 'parameter_invalid_integer', message: 'Invalid integer: x' } }, ' (parameter_invalid_integer)'],
    ['prose only (it may quote what was sent)', { error: 'Bad Request', message: 'user ada@example.com is invalid' }, ''],
  ] as const)("a 4xx's log detail names the vendor's error code, never its message: %s", async (_name, body, suffix) => {
    vendor.script = () => ({ status: 400, body });
    const e = await sourceError(sources.notifications.unreadCounts(['a']));
    expect(e.detail).toBe(`GET /v1/unread-counts answered 400${suffix}`);
  });

  it('an API that moved (308 with a Location): not followed, SOURCE_BAD_RESPONSE whose detail says where it went', async () => {
    vendor.script = () => ({ status: 308, headers: { location: 'https://api2.vendor.example/v1/unread-counts?user_ids=a' }, body: {} });
    const e = await sourceError(sources.notifications.unreadCounts(['a']));
    expect({ code: e.code, retryable: e.retryable, status: e.status }).toEqual({ code: 'SOURCE_BAD_RESPONSE', retryable: false, status: 308 });
    expect(e.detail).toBe('GET /v1/unread-counts answered 308, moved to https://api2.vendor.example/v1/unread-counts?user_ids=a (redirects are not followed)');
    expect(vendor.seen).toHaveLength(1);
  });

  it('429: SOURCE_RATE_LIMITED with its Retry-After, and every call to the vendor waits out the pause, not sent early', async () => {
    const fresh = sourcesAt(vendor.url, { NOTIFICATIONS_RETRY_MAX_ATTEMPTS: '1' });
    try {
      vendor.script = () => ({ status: 429, headers: { 'retry-after': '1' }, body: {} });
      const e = await sourceError(fresh.notifications.unreadCounts(['a']));
      expect(e).toMatchObject({ code: 'SOURCE_RATE_LIMITED', retryable: true, source: 'notifications', retryAfterSeconds: 1 });
      vendor.script = () => ({ body: { counts: { a: 1 } } });
      const refusedAt = Date.now();
      const seenBefore = vendor.seen.length;
      // Another route of the same vendor: it waits for the pause too.
      const page = fresh.notifications.list('u', 0, 1, false).catch(() => null);
      await new Promise((r) => setTimeout(r, 800));
      expect(vendor.seen.length).toBe(seenBefore);
      await page;
      expect(vendor.seen.length).toBe(seenBefore + 1);
      expect(Date.now() - refusedAt).toBeGreaterThanOrEqual(1000);
    } finally {
      await fresh.close();
    }
  });

  it('a date that does not parse is SOURCE_BAD_RESPONSE, logged with the path that failed', async () => {
    vendor.script = () => ({ headers: { 'x-total-count': '1' }, body: [{ id: 'n', user: 'u', title: 't', body: 'b', channel: 'push', read: true, created: 'last tuesday' }] });
    const e = await sourceError(sources.notifications.list('u', 0, 1, false));
    expect(e.code).toBe('SOURCE_BAD_RESPONSE');
    expect(logs.some((l) => l.includes('failed validation') && l.includes('0.created'))).toBe(true);
  });

  it('a count that is not a number fails its own id, and the others are read', async () => {
    vendor.script = () => ({ body: { counts: { a: 'three', b: 2, extra: { any: 'shape' } } } });
    const counts = await sources.notifications.unreadCounts(['a', 'b']);
    expect(counts.get('b')).toBe(2);
    expect(counts.get('a')).toBeInstanceOf(SourceError);
    expect(counts.get('a')).toMatchObject({ code: 'SOURCE_BAD_RESPONSE', source: 'notifications' });
    expect(counts.has('extra')).toBe(false);
  });

  it.each([
    ['a point that is not an object', [7], 'data.0.series: point 0: expected an object'],
    [
      'a count that is negative',
      [
        { ts: 1_704_067_200, page_views: 1, sessions: 1 },
        { ts: 1_704_070_800, page_views: -1, sessions: 1 },
      ],
      'data.0.series: point 1: page_views',
    ],
    ['a timestamp that is a string', [{ ts: '2024-01-01', page_views: 1, sessions: 1 }], 'data.0.series: point 0: ts'],
    ['not an array', { ts: 1 }, 'data.0.series: expected an array of points'],
  ])('a metrics series with %s is SOURCE_BAD_RESPONSE for that user alone, naming the point that failed', async (_name, series, where) => {
    const good = { user_id: 'u2', page_views: 1, sessions: 1, avg_session_seconds: 1, conversion_rate: 0, series: [] };
    vendor.script = () => ({ body: { data: [{ user_id: 'u1', page_views: 1, sessions: 1, avg_session_seconds: 1, conversion_rate: 0, series }, good], missing: ['u3'] } });
    const found = await sources.analytics.metrics(['u1', 'u2', 'u3'], { fromSec: 1_704_067_200, toSec: 1_704_153_600, granularity: 'HOUR' });
    const e = found.get('u1') as SourceError;
    expect(e).toBeInstanceOf(SourceError);
    expect(e.code).toBe('SOURCE_BAD_RESPONSE');
    expect(e.detail).toContain(where);
    expect(found.get('u2')).toMatchObject({ pageViews: 1 });
    expect(found.has('u3')).toBe(false);
  });

  it('an answer compressed unasked is decoded, codings stacked too; one in a coding we cannot read is SOURCE_BAD_RESPONSE naming it', async () => {
    const page = Buffer.from(JSON.stringify({ data: [{ id: 'e1', type: 'login', ts: 1_700_000_000_000 }], next_cursor: null }));
    vendor.script = () => ({ headers: { 'content-encoding': 'gzip, br' }, raw: brotliCompressSync(gzipSync(page)) });
    expect((await sources.analytics.events('u1', 10, null))!.events.map((e) => e.id)).toEqual(['e1']);
    vendor.script = () => ({ headers: { 'content-encoding': 'zstd' }, raw: page });
    const e = await sourceError(sources.analytics.events('u1', 10, null));
    expect([e.code, e.retryable, e.detail]).toEqual(['SOURCE_BAD_RESPONSE', false, 'the answer is in an encoding we cannot read (zstd)']);
    // An error status is classified by itself, whatever its body's coding.
    vendor.script = () => ({ status: 503, headers: { 'content-encoding': 'zstd' }, raw: 'x' });
    expect((await sourceError(sources.analytics.events('u1', 10, null))).code).toBe('SOURCE_UNAVAILABLE');
  });

  it('a closed port is SOURCE_UNAVAILABLE, and a slow answer SOURCE_TIMEOUT after the per-attempt timeout', async () => {
    const closed = sourcesAt('http://127.0.0.1:9', { IDENTITY_RETRY_MAX_ATTEMPTS: '1', ANALYTICS_RETRY_MAX_ATTEMPTS: '1' });
    try {
      expect((await sourceError(closed.analytics.events('u', 1, null))).code).toBe('SOURCE_UNAVAILABLE');
      expect((await sourceError(closed.identity.usersByIds(['u']))).code).toBe('SOURCE_UNAVAILABLE');
    } finally {
      await closed.close();
    }
    vendor.script = () => new Promise((resolve) => setTimeout(() => resolve({ body: { counts: {} } }), 1500));
    const e = await sourceError(sources.notifications.unreadCounts(['a']));
    expect(e).toMatchObject({ code: 'SOURCE_TIMEOUT', retryable: true });
  });
});

describe('helpers', () => {
  it('Retry-After as seconds or HTTP-date, and x-ratelimit-reset', () => {
    const now = Date.parse('2024-01-02T03:04:05Z');
    expect(retryAfterSeconds({ 'retry-after': '12' }, now)).toBe(12);
    expect(retryAfterSeconds({ 'retry-after': 'Tue, 02 Jan 2024 03:04:15 GMT' }, now)).toBe(10);
    expect(retryAfterSeconds({ 'x-ratelimit-reset': String(now / 1000 + 4) }, now)).toBe(4);
    expect(retryAfterSeconds({ 'retry-after': 'soon' }, now)).toBeUndefined();
    expect(retryAfterSeconds({}, now)).toBeUndefined();
  });

  it('placeWindow leaves out an item already in the window; the item before a repeat goes on after it', () => {
    const id = (x: string) => x;
    // An item added between two pages' reads shifts 'c' onto the second page too.
    expect(
      placeWindow(
        [
          { start: 0, items: ['a', 'b', 'c'] },
          { start: 3, items: ['c', 'd', 'e'] },
        ],
        0,
        6,
        id,
      ),
    ).toEqual({
      items: ['a', 'b', 'c', 'd', 'e'],
      after: [1, 2, 4, 5, 6],
      end: 6,
      beyond: false,
    });
    expect(placeWindow([{ start: 0, items: ['a', 'b', 'c', 'd'] }], 1, 2, id)).toEqual({ items: ['b', 'c'], end: 3, beyond: true });
    // A full page with a row repeated past its end: the repeat says nothing of more.
    expect(placeWindow([{ start: 0, items: ['c', 'b', 'a', 'c'] }], 0, 3, id)).toEqual({ items: ['c', 'b', 'a'], end: 3, beyond: false });
  });

  it("planFixedPages: the pages of a vendor's own size that hold the window, every one between", () => {
    expect(planFixedPages(0, 20, 30)).toEqual({ perPage: 30, pages: [0], skip: 0 });
    expect(planFixedPages(20, 20, 30)).toEqual({ perPage: 30, pages: [0, 1], skip: 20 });
    expect(planFixedPages(35, 100, 30)).toEqual({ perPage: 30, pages: [1, 2, 3, 4], skip: 5 });
    expect(planFixedPages(150, 20, 200)).toEqual({ perPage: 200, pages: [0], skip: 150 });
  });

  it('planPages covers any window in one page when a page size allows, else two', () => {
    expect(planPages(0, 20, 100)).toEqual({ perPage: 20, pages: [0], skip: 0 });
    expect(planPages(40, 20, 100)).toEqual({ perPage: 20, pages: [2], skip: 0 });
    expect(planPages(5, 20, 100)).toEqual({ perPage: 25, pages: [0], skip: 5 });
    expect(planPages(99, 100, 100)).toEqual({ perPage: 100, pages: [0, 1], skip: 99 });
    for (let offset = 0; offset < 300; offset += 7) {
      for (const count of [1, 3, 20, 100]) {
        const plan = planPages(offset, count, 100);
        const start = plan.pages[0]! * plan.perPage + plan.skip;
        expect(start).toBe(offset);
        expect(plan.pages.length * plan.perPage - plan.skip).toBeGreaterThanOrEqual(count);
      }
    }
  });

  it('planPagesWithin: a window before a listing limit in pages none of which reaches past it', () => {
    // planPages would ask page 10 of 98 ([980, 1078)), which Auth0 refuses.
    expect(planPages(980, 20, 100)).toEqual({ perPage: 20, pages: [49], skip: 0 });
    expect(planPagesWithin(985, 15, 100, 1000)).toEqual({ perPage: 20, pages: [49], skip: 5 });
    expect(planPagesWithin(950, 50, 100, 1000)).toEqual({ perPage: 50, pages: [19], skip: 0 });
    expect(() => planPagesWithin(990, 20, 100, 1000)).toThrow(RangeError);
    for (const limit of [1000, 997, 100, 64]) {
      for (let offset = 0; offset < limit; offset += 13) {
        for (const count of [1, 7, 20, 50, 100]) {
          const n = Math.min(count, limit - offset);
          const plan = planPagesWithin(offset, n, 100, limit);
          expect(plan.pages[0]! * plan.perPage + plan.skip).toBe(offset);
          expect(plan.pages.length * plan.perPage - plan.skip).toBeGreaterThanOrEqual(n);
          expect((plan.pages.at(-1)! + 1) * plan.perPage).toBeLessThanOrEqual(limit);
        }
      }
    }
  });

  it('VendorPageSize learns a listing limit by bisection once, shared by windows refused at once, and plans within it', async () => {
    const size = new VendorPageSize(100);
    const asked: number[] = [];
    const reaches = async (end: number) => {
      asked.push(end);
      return end <= 1000;
    };
    const [a, b] = await Promise.all([size.learnListingLimit(1078, reaches), size.learnListingLimit(1100, reaches)]);
    expect([a, b, size.listingLimit]).toEqual([1000, 1000, 1000]);
    expect(asked.length).toBeLessThanOrEqual(12);
    // Known and below the refused end: nothing asked.
    expect(await size.learnListingLimit(1500, reaches)).toBe(1000);
    expect(asked.length).toBeLessThanOrEqual(12);
    expect(size.plan(980, 50)).toEqual({ perPage: 20, pages: [49], skip: 0, asked: 20 });
    // The first item's own page refused: the 400 was about something else.
    expect(await new VendorPageSize(100).learnListingLimit(200, async () => false)).toBeUndefined();
  });

  it('VendorPageSize trusts a listing limit for a while, then plans past it again (a vendor may raise it), and learns it again at the next refusal', async () => {
    const size = new VendorPageSize(100, 50);
    let limit = 1000;
    const reaches = async (end: number) => end <= limit;
    expect(await size.learnListingLimit(1078, reaches)).toBe(1000);
    expect(size.plan(980, 50)).toEqual({ perPage: 20, pages: [49], skip: 0, asked: 20 });
    await new Promise((r) => setTimeout(r, 60));
    // Forgotten: the window is planned as the vendor's pages fall, reaching past 1,000.
    expect(size.listingLimit).toBeUndefined();
    const unbounded = size.plan(980, 50);
    expect(unbounded).toEqual({ ...planPages(980, 50, 100), asked: unbounded.perPage });
    expect((unbounded.pages.at(-1)! + 1) * unbounded.perPage).toBeGreaterThan(1000);
    limit = 2000;
    expect(await size.learnListingLimit(2078, reaches)).toBe(2000);
    expect(size.listingLimit).toBe(2000);
  });
});

describe('audit: a key the vendor already holds with another body', () => {
  const event = { actor: 'a', action: 'notification.send', target: 'auth0|x', at: new Date(0).toISOString(), details: {} };
  it('a 422 whose code names idempotency is the event already recorded (null); a 422 for anything else stays an error', async () => {
    vendor.script = () => ({ status: 422, body: { error: 'idempotency_key_reused', message: 'This Idempotency-Key was used with a different body.' } });
    expect(await sources.audit.record(event, 'k1')).toBeNull();
    vendor.script = () => ({ status: 422, body: { error: { type: 'idempotency_error', message: 'Keys for idempotent requests can only be used with the same parameters' } } });
    expect(await sources.audit.record(event, 'k2')).toBeNull();
    vendor.script = () => ({ status: 422, body: { error: 'invalid_request', message: 'at: Invalid ISO datetime' } });
    expect((await sourceError(sources.audit.record(event, 'k3'))).code).toBe('SOURCE_BAD_RESPONSE');
    vendor.script = () => ({ status: 422, body: {} });
    expect((await sourceError(sources.audit.record(event, 'k4'))).code).toBe('SOURCE_BAD_RESPONSE');
  });
});
