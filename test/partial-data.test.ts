import { describe, expect, it } from 'vitest';
import { sharedStack, startStack, type Stack } from './helpers/stack.js';

// Error mapping is under test here, not the policies: one attempt per call, and
// a short per-attempt timeout so the hanging-upstream case ends quickly.
const once = { retryMaxAttempts: 1 };
const stack = sharedStack({ tuning: { identity: once, analytics: { ...once, timeoutMs: 300 }, notifications: once } });

type AnyData = Record<string, any>;

const DASHBOARD = `query($id: ID!) { user(id: $id) { id name email metrics { pageViews } unreadNotificationCount notifications(first: 2) { totalCount } } }`;

/** Nothing in a response may carry a stack, an upstream's raw body or one of our upstream credentials. */
function expectNoInternals(stack: Stack, text: string): void {
  const c = stack.upstreams.credentials;
  for (const secret of [c.identity.clientSecret, c.identity.clientId, c.analyticsApiKey, c.notificationsToken, c.auditApiKey]) {
    expect(text).not.toContain(secret);
  }
  expect(text).not.toMatch(/\n\s+at |node_modules|\.ts:\d+|injected_fault|invalid_api_key|stack/i);
  expect(text).not.toContain('127.0.0.1');
}

describe('partial data with typed errors', () => {
  it('analytics answering 503: metrics null with SOURCE_UNAVAILABLE, everything else resolves, HTTP 200', async () => {
    await stack.faults('analytics', { errorRate: 1, errorStatus: 503 });
    const id = stack.userId(1);
    const res = await stack.gql<AnyData>(DASHBOARD, { id });
    expect(res.status).toBe(200);
    expect(res.body.data!.user).toMatchObject({ id, name: stack.upstreams.dataset.users[1]!.name, metrics: null });
    expect(res.body.data!.user.unreadNotificationCount).toBeTypeOf('number');
    expect(res.body.data!.user.notifications.totalCount).toBeTypeOf('number');
    expect(res.body.errors).toHaveLength(1);
    expect(res.body.errors![0]).toMatchObject({
      path: ['user', 'metrics'],
      extensions: { code: 'SOURCE_UNAVAILABLE', source: 'analytics', retryable: true },
    });
    expectNoInternals(stack, res.text);
  });

  it('notifications rate limited: SOURCE_RATE_LIMITED with retryAfterSeconds from the HTTP-date Retry-After', async () => {
    await stack.faults('notifications', { rateLimitPerSec: 1 });
    const id = stack.userId(2);
    // Two calls to notifications in one request (list and unread counts) exceed 1/s.
    const res = await stack.gql<AnyData>(DASHBOARD, { id });
    expect(res.status).toBe(200);
    expect(res.body.data!.user.metrics.pageViews).toBeTypeOf('number');
    const limited = res.body.errors!.filter((e) => e.extensions?.code === 'SOURCE_RATE_LIMITED');
    expect(limited.length).toBeGreaterThanOrEqual(1);
    expect(limited[0]!.extensions).toMatchObject({ source: 'notifications', retryable: true });
    expect(limited[0]!.extensions!.retryAfterSeconds).toBeTypeOf('number');
    expect(limited[0]!.extensions!.retryAfterSeconds as number).toBeLessThanOrEqual(2);
    expectNoInternals(stack, res.text);
  });

  it('identity refusing with 429: SOURCE_RATE_LIMITED with retryAfterSeconds from x-ratelimit-reset', async () => {
    await stack.gql(DASHBOARD, { id: stack.userId(0) }); // token fetched before the fault
    await stack.faults('identity', { errorRate: 1, errorStatus: 429 });
    const res = await stack.gql<AnyData>(`query($b: ID!) { b: user(id: $b) { id name } }`, { b: stack.userId(4) });
    const limited = res.body.errors?.find((e) => e.extensions?.code === 'SOURCE_RATE_LIMITED');
    expect(limited?.extensions).toMatchObject({ source: 'identity', retryable: true });
    expect(limited?.extensions?.retryAfterSeconds).toBeTypeOf('number');
    expect(limited?.extensions?.retryAfterSeconds as number).toBeLessThanOrEqual(1);
  });

  it("identity resetting connections: the user keeps its id and the other vendors' fields, identity's fields are SOURCE_UNAVAILABLE", async () => {
    await stack.faults('identity', { down: 'reset' });
    const id = stack.userId(5);
    const res = await stack.gql<AnyData>(`query($id: ID!) { user(id: $id) { id name metrics { pageViews } } }`, { id });
    expect(res.status).toBe(200);
    expect(res.body.data!.user).toMatchObject({ id, name: null });
    expect(res.body.data!.user.metrics.pageViews).toBeTypeOf('number');
    expect(res.body.errors).toHaveLength(1);
    expect(res.body.errors![0]).toMatchObject({ path: ['user', 'name'], extensions: { code: 'SOURCE_UNAVAILABLE', source: 'identity', retryable: true } });
    expectNoInternals(stack, res.text);
  });

  it('a malformed body is SOURCE_BAD_RESPONSE, not retryable; truncated JSON and the wrong shape alike', async () => {
    for (const kind of ['syntax', 'shape'] as const) {
      await stack.faults('notifications', { malformedRate: 1, malformedKind: kind, routes: ['GET /v1/unread-counts'] });
      const res = await stack.gql<AnyData>(DASHBOARD, { id: stack.userId(6) });
      expect(res.status).toBe(200);
      expect(res.body.data!.user.unreadNotificationCount).toBeNull();
      expect(res.body.data!.user.notifications.totalCount).toBeTypeOf('number');
      expect(res.body.errors![0]).toMatchObject({
        path: ['user', 'unreadNotificationCount'],
        extensions: { code: 'SOURCE_BAD_RESPONSE', source: 'notifications', retryable: false },
      });
    }
    // The log says what failed validation, for the operator; the client does not see it.
    expect(stack.logs.some((l) => l.includes('upstream response failed validation'))).toBe(true);
  });

  it('a hanging upstream is SOURCE_TIMEOUT after the per-attempt timeout, and the rest is answered', async () => {
    await stack.faults('analytics', { down: 'hang' });
    const started = performance.now();
    const res = await stack.gql<AnyData>(DASHBOARD, { id: stack.userId(8) });
    expect(performance.now() - started).toBeLessThan(5000);
    expect(res.body.data!.user.metrics).toBeNull();
    expect(res.body.data!.user.name).toBe(stack.upstreams.dataset.users[8]!.name);
    expect(res.body.errors![0]!.extensions).toMatchObject({ code: 'SOURCE_TIMEOUT', source: 'analytics', retryable: true });
  });

  it("users(ids) with identity failing: every item keeps its id, identity's field fails at its own path, unknown ids stay null", async () => {
    await stack.faults('identity', { errorRate: 1, errorStatus: 502 });
    const ids = [stack.userId(1), stack.userId(2)];
    const res = await stack.gql<AnyData>(`query($ids: [ID!]!) { users(ids: $ids) { id nickname unreadNotificationCount } }`, { ids });
    expect(res.status).toBe(200);
    expect(res.body.data!.users.map((u: AnyData) => [u.id, u.nickname])).toEqual(ids.map((id) => [id, null]));
    for (const u of res.body.data!.users) expect(u.unreadNotificationCount).toBeTypeOf('number');
    expect(res.body.errors!.map((e) => e.path)).toEqual([
      ['users', 0, 'nickname'],
      ['users', 1, 'nickname'],
    ]);
    await stack.faults('identity', {});
    const unknown = await stack.gql<AnyData>(`query { users(ids: ["auth0|nobody"]) { id } }`);
    expect(unknown.body.data).toEqual({ users: [null] });
  });
});

describe('credentials the upstream rejects', () => {
  it('is SOURCE_AUTH_FAILED, not retryable, and never echoes the key', async () => {
    const wrong = await startStack({ endpoints: (real) => ({ ...real, analytics: { ...real.analytics, apiKey: 'wrong-key-123456' } }) });
    try {
      const res = await wrong.gql<AnyData>(DASHBOARD, { id: wrong.userId(1) });
      expect(res.status).toBe(200);
      expect(res.body.data!.user.name).toBeTypeOf('string');
      expect(res.body.errors![0]!.extensions).toMatchObject({ code: 'SOURCE_AUTH_FAILED', source: 'analytics', retryable: false });
      expect(res.text).not.toContain('wrong-key-123456');
      expect(wrong.logs.join('')).not.toContain('wrong-key-123456');
    } finally {
      await wrong.close();
    }
  });

  it('identity refusing the client secret fails identity fields only, and the secret is in no log line', async () => {
    const wrong = await startStack({ endpoints: (real) => ({ ...real, identity: { ...real.identity, clientSecret: 'not-the-secret-987' } }) });
    try {
      const res = await wrong.gql<AnyData>(`{ userList(first: 1) { totalCount } }`);
      expect(res.status).toBe(200);
      expect(res.body.data).toBeNull(); // userList is non-null in the contract, so its failure nulls data
      expect(res.body.errors![0]!.extensions).toMatchObject({ code: 'SOURCE_AUTH_FAILED', source: 'identity', retryable: false });
      expect(res.text + wrong.logs.join('')).not.toContain('not-the-secret-987');
    } finally {
      await wrong.close();
    }
  });
});
