import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { setTimeout as sleep } from 'node:timers/promises';
import { IDLE_BEFORE_CLOSE_MS } from '../src/sources/closed-idle-connections.js';
import { HttpSource } from '../src/sources/http-source.js';
import { calls, stackPool, type Stack } from './helpers/stack.js';
import { metricsOf, seriesValue } from './helpers/metrics.js';

/**
 * Each policy, with faults set through the simulated upstreams' admin endpoint
 * and the effect read from their stats: calls seen, statuses, timing.
 */
type AnyData = Record<string, any>;

const METRICS = `query($id: ID!) { user(id: $id) { name metrics { pageViews } } }`;
const NOTIFICATIONS = `query($id: ID!) { user(id: $id) { notifications(first: 2) { totalCount } } }`;

const stackWith = stackPool();

/** No secret of ours may show in any log line of any stack, at debug level. */
afterAll(() => {
  for (const stack of stackWith.started) {
    const logs = stack.logs.join('');
    const c = stack.upstreams.credentials;
    for (const secret of [c.identity.clientSecret, c.analyticsApiKey, c.notificationsToken, c.auditApiKey, stack.secret]) expect(logs).not.toContain(secret);
    expect(logs).not.toMatch(/Bearer [\w-]{8,}/);
  }
});

describe('retries', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await stackWith({ tuning: { analytics: { retryMaxAttempts: 3, retryBaseDelayMs: 20, retryMaxDelayMs: 100, breakerMinCalls: 1000 } } });
  });
  afterEach(() => stack.reset());

  it.each([
    [503, 3, 'SOURCE_UNAVAILABLE'],
    [500, 3, 'SOURCE_UNAVAILABLE'],
    [408, 3, 'SOURCE_TIMEOUT'],
    [400, 1, 'SOURCE_BAD_RESPONSE'],
    [403, 1, 'SOURCE_AUTH_FAILED'],
    [422, 1, 'SOURCE_BAD_RESPONSE'],
  ])('a %i is tried %i time(s) in all', async (status, attempts, code) => {
    await stack.faults('analytics', { errorRate: 1, errorStatus: status });
    const res = await stack.gql<AnyData>(METRICS, { id: stack.userId(1) });
    expect(res.body.errors![0]!.extensions!.code).toBe(code);
    expect(calls(await stack.stats('analytics'), 'POST /v1/metrics/query')).toBe(attempts);
  });

  it('a 404 is an answer (no events for an unknown user), never retried', async () => {
    const res = await stack.gql<AnyData>(`{ users(ids: ["auth0|ghost"]) { id } }`);
    expect(res.body.data!.users).toEqual([null]);
    const direct = await stack.gateway.sources.analytics.events('auth0|ghost', 5, null);
    expect(direct).toBeNull();
    expect(calls(await stack.stats('analytics'), 'GET /v1/users/:id/events')).toBe(1);
  });

  it('connection resets are retried, and a transient failure that clears is invisible to the client', async () => {
    await stack.faults('analytics', { down: 'reset' });
    const failed = await stack.gql<AnyData>(METRICS, { id: stack.userId(2) });
    expect(failed.body.errors![0]!.extensions!.code).toBe('SOURCE_UNAVAILABLE');
    expect(calls(await stack.stats('analytics'), 'POST /v1/metrics/query')).toBe(3);

    await stack.reset();
    await stack.faults('analytics', { errorRate: 0.5, errorStatus: 503 });
    let clean = 0;
    for (let i = 0; i < 20; i++) {
      const res = await stack.gql<AnyData>(METRICS, { id: stack.userId(10 + i) });
      if (!res.body.errors) clean++;
    }
    // P(all three attempts fail) = 1/8; twenty queries answering cleanly far more often than not shows the retries at work.
    expect(clean).toBeGreaterThanOrEqual(12);
    const s = (await stack.stats('analytics')).routes['POST /v1/metrics/query']!;
    expect(s.calls).toBeGreaterThan(20);
  });
});

/** The audit POST without an Idempotency-Key: a write the vendor could not tell from a second one. */
class KeylessAudit extends HttpSource {
  post(event: Record<string, unknown>) {
    return this.fetch({ route: 'POST /v1/events', method: 'POST', path: '/v1/events', body: event, schema: z.unknown() });
  }
}

const auditEvent = () => ({ actor: 'a', action: 'x', target: 't', at: new Date().toISOString(), details: {} });

describe('writes', () => {
  it('are retried only with an idempotency key', async () => {
    const stack = await stackWith({ tuning: { audit: { retryMaxAttempts: 3, retryBaseDelayMs: 10, breakerMinCalls: 1000 } } });
    await stack.faults('audit', { errorRate: 1, errorStatus: 503 });
    const event = auditEvent();
    await expect(stack.gateway.sources.audit.record(event, 'key-1')).rejects.toMatchObject({ code: 'SOURCE_UNAVAILABLE' });
    expect(calls(await stack.stats('audit'), 'POST /v1/events')).toBe(3);

    // The same POST without a key: one attempt, since a repeat could write twice.
    await stack.reset();
    await stack.faults('audit', { errorRate: 1, errorStatus: 503 });
    const keyless = new KeylessAudit(stack.gateway.sources.audit['options']);
    await expect(keyless.post(event)).rejects.toMatchObject({ code: 'SOURCE_UNAVAILABLE' });
    expect(calls(await stack.stats('audit'), 'POST /v1/events')).toBe(1);
  });
});

/** The read vendors, and a query that needs each of them. */
const READS = ['identity', 'analytics', 'notifications'] as const;
const QUERY = `query($id: ID!) { user(id: $id) { name metrics { pageViews } unreadNotificationCount } }`;

/** QUERY answered whole: a field from each read vendor, no error. */
function expectWholeUser(answer: { body: { errors?: unknown; data?: AnyData | null } }): void {
  expect(answer.body.errors).toBeUndefined();
  expect(answer.body.data!.user).toEqual({ name: expect.any(String), metrics: { pageViews: expect.any(Number) }, unreadNotificationCount: expect.any(Number) });
}

/** No vendor call failed and none was retried, as the metrics count them. */
function expectNoFailedAttemptOrRetry(metrics: string): void {
  expect(metrics).not.toMatch(/^gateway_upstream_requests_total\{[^}]*outcome="(?!ok")/m);
  expect(metrics).not.toMatch(/^gateway_upstream_retries_total\{/m);
}

/**
 * A vendor whose idle timeout is shorter than our keep-alive and unsaid (`idleCloseMs`: a request on a connection
 * idle that long is reset unanswered, the race a client loses now and then, lost every time).
 */
describe('a vendor that closes idle connections without saying so', () => {
  it('a read that meets one is sent again at once on another: answered, no failed attempt, no retry, one info line a source', async () => {
    const stack = await stackWith({});
    for (const source of READS) await stack.faults(source, { idleCloseMs: IDLE_BEFORE_CLOSE_MS });
    const logsBefore = stack.logs.length;
    const answers = [];
    for (let i = 0; i < 3; i++) {
      if (i > 0) await sleep(IDLE_BEFORE_CLOSE_MS + 100);
      answers.push(await stack.gql<AnyData>(QUERY, { id: stack.userId(300 + i) }));
    }
    for (const answer of answers) expectWholeUser(answer);
    const metrics = await metricsOf(stack);
    for (const source of READS) {
      const stats = await stack.stats(source);
      // The second and third queries each met at least one closed connection at every vendor, and the vendor saw each call once.
      expect(stats.idleClosed).toBeGreaterThanOrEqual(2);
      expect(stats.totalCalls).toBe(3);
      expect(seriesValue(metrics, `gateway_upstream_closed_idle_connections_total{source="${source}"}`)).toBe(stats.idleClosed);
    }
    // Before, each was a failed attempt (SOURCE_UNAVAILABLE) and a retry after a backoff, counted against the vendor's health.
    expectNoFailedAttemptOrRetry(metrics);
    const lines = stack.logs.slice(logsBefore).map((l) => JSON.parse(l) as { level: number; msg: string; source?: string });
    expect(lines.filter((l) => l.level >= 40)).toEqual([]);
    const said = lines.filter((l) => l.msg.includes('closed an idle connection'));
    expect(said.map((l) => l.source).sort()).toEqual([...READS].sort());
    expect(said[0]!.level).toBe(30);
  });

  it("with <SOURCE>_KEEP_ALIVE_MS under the vendor's idle timeout, no call meets a closed connection", async () => {
    const stack = await stackWith({ tuning: { analytics: { keepAliveMs: IDLE_BEFORE_CLOSE_MS / 2 } } });
    await stack.faults('analytics', { idleCloseMs: IDLE_BEFORE_CLOSE_MS });
    for (let i = 0; i < 2; i++) {
      if (i > 0) await sleep(IDLE_BEFORE_CLOSE_MS + 100);
      expect((await stack.gql<AnyData>(QUERY, { id: stack.userId(310 + i) })).body.errors).toBeUndefined();
    }
    const stats = await stack.stats('analytics');
    expect([stats.idleClosed, stats.totalCalls]).toEqual([0, 2]);
  });

  it('a write is sent again only when the vendor can tell the repeat (its Idempotency-Key); without one it fails unsent', async () => {
    const stack = await stackWith({});
    const keyless = new KeylessAudit(stack.gateway.sources.audit['options']);
    await stack.faults('audit', { idleCloseMs: IDLE_BEFORE_CLOSE_MS });
    await keyless.post(auditEvent());
    await sleep(IDLE_BEFORE_CLOSE_MS + 100);
    await expect(keyless.post(auditEvent())).rejects.toMatchObject({ code: 'SOURCE_UNAVAILABLE' });
    let stats = await stack.stats('audit');
    expect([stats.idleClosed, calls(stats, 'POST /v1/events')]).toEqual([1, 1]);

    await stack.gateway.sources.audit.record(auditEvent(), 'idle-key-1');
    await sleep(IDLE_BEFORE_CLOSE_MS + 100);
    await stack.gateway.sources.audit.record(auditEvent(), 'idle-key-2');
    stats = await stack.stats('audit');
    expect([stats.idleClosed, calls(stats, 'POST /v1/events')]).toEqual([2, 3]);
    // The keyed write went again at once, not after a failed attempt and a backoff (the keyless source is not watched).
    const metrics = await metricsOf(stack);
    expect(seriesValue(metrics, 'gateway_upstream_requests_total{source="audit",route="POST /v1/events",outcome="ok"}')).toBe(2);
    expect(metrics).not.toMatch(/^gateway_upstream_requests_total\{source="audit"[^}]*outcome="(?!ok")/m);
    expect(metrics).not.toMatch(/^gateway_upstream_retries_total\{source="audit"/m);
  });
});

/** A vendor that closes every connection after its answer (`Connection: close`: HTTP/1.0-era servers, some proxies). */
describe('a vendor that closes each connection after its answer', () => {
  it('each call goes on a new connection: answered, no failed attempt, no retry, no warn line', async () => {
    const stack = await stackWith({});
    for (const source of READS) await stack.faults(source, { closeEachConnection: true });
    const logsBefore = stack.logs.length;
    for (let i = 0; i < 4; i++) expectWholeUser(await stack.gql<AnyData>(QUERY, { id: stack.userId(320 + i) }));
    const metrics = await metricsOf(stack);
    for (const source of READS) {
      const stats = await stack.stats(source);
      expect(stats.totalCalls).toBeGreaterThanOrEqual(4);
      // A connection a call, each opened after the last was closed: none met closed (idleClosed), none sent twice.
      expect(stats.connections).toBeGreaterThanOrEqual(stats.totalCalls);
      expect(stats.idleClosed).toBe(0);
    }
    expectNoFailedAttemptOrRetry(metrics);
    expect(metrics).not.toMatch(/^gateway_upstream_closed_idle_connections_total\{[^}]*\} [1-9]/m);
    const lines = stack.logs.slice(logsBefore).map((l) => JSON.parse(l) as { level: number; msg: string });
    expect(lines.filter((l) => l.level >= 40)).toEqual([]);
  });
});

describe('Retry-After', () => {
  it.each([
    ['notifications', 'HTTP-date Retry-After', NOTIFICATIONS, 'GET /v1/users/:id/notifications', {}],
    ['analytics', 'Retry-After in seconds', METRICS, 'POST /v1/metrics/query', {}],
    // V8's Date.parse reads "0.4" as 1 April 2000: taken for an HTTP-date, it was a wait of nothing.
    ['analytics', 'Retry-After in seconds with a fraction ("0.4")', METRICS, 'POST /v1/metrics/query', { retryAfterFraction: true }],
    ['identity', 'x-ratelimit-reset', `query($id: ID!) { user(id: $id) { name } }`, 'GET /api/v2/users', {}],
  ] as const)('%s: a 429 with %s is waited out, then retried, when it fits the deadline', async (source, _dialect, query, route, dialect) => {
    const stack = await stackWith({});
    // The next call is a 429 in the vendor's dialect, the ones after it are answered.
    await stack.faults(source, { errorRate: 1, errorStatus: 429, errorCount: 1, ...dialect });
    const started = performance.now();
    const res = await stack.gql<AnyData>(query, { id: stack.userId(3) });
    const elapsed = performance.now() - started;
    expect(res.body.errors).toBeUndefined();
    const stats = await stack.stats(source);
    expect(stats.routes[route]!.statuses).toEqual({ '200': 1, '429': 1 });
    // The retry waited for the moment the 429 named (the vendor's next window, up to a second away), not the backoff's few ms.
    expect(stats.retriedEarly).toBe(0);
    expect(elapsed).toBeLessThan(2500);
  });

  it('that does not fit the deadline comes back at once with retryAfterSeconds', async () => {
    const stack = await stackWith({ requestDeadlineMs: 400 });
    await stack.faults('notifications', { errorRate: 1, errorStatus: 429 });
    const started = performance.now();
    const res = await stack.gql<AnyData>(NOTIFICATIONS, { id: stack.userId(6) });
    const elapsed = performance.now() - started;
    // Retry-After is at least a second away, the deadline 400 ms: no wait, no retry.
    expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'SOURCE_RATE_LIMITED', source: 'notifications', retryable: true, retryAfterSeconds: 1 });
    expect(elapsed).toBeLessThan(350);
    expect(calls(await stack.stats('notifications'), 'GET /v1/users/:id/notifications')).toBe(1);
  });

  it('"Retry-After: 0" passed on to a client says 1 s, not 0 (a client told 0 would ask again at once)', async () => {
    const stack = await stackWith({ tuning: { notifications: { retryMaxAttempts: 1 } } });
    await stack.faults('notifications', { errorRate: 1, errorStatus: 429, headers: { 'retry-after': '0' } });
    const res = await stack.gql<AnyData>(NOTIFICATIONS, { id: stack.userId(7) });
    expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'SOURCE_RATE_LIMITED', source: 'notifications', retryAfterSeconds: 1 });
  });
});

describe('circuit breaker', () => {
  it('opens on the failure ratio, fails fast without calling upstream, half-opens after the cool-down and closes on success', async () => {
    const stack = await stackWith({
      tuning: { analytics: { retryMaxAttempts: 1, breakerMinCalls: 4, breakerFailureRatio: 0.5, breakerWindowMs: 10_000, breakerHalfOpenAfterMs: 800 } },
    });
    const state = async () => ((await stack.gql<AnyData>(`{ sources { name state errorRate calls } }`)).body.data!.sources as AnyData[]).find((s) => s.name === 'analytics')!;
    expect((await state()).state).toBe('CLOSED');

    await stack.faults('analytics', { errorRate: 1, errorStatus: 503 });
    for (let i = 0; i < 6 && (await state()).state === 'CLOSED'; i++) await stack.gql(METRICS, { id: stack.userId(20 + i) });
    const open = await state();
    expect(open.state).toBe('OPEN');
    expect(open.errorRate).toBe(1);

    const before = calls(await stack.stats('analytics'), 'POST /v1/metrics/query');
    const fast = await stack.gql<AnyData>(METRICS, { id: stack.userId(30) });
    expect(fast.body.data!.user.name).toBeTypeOf('string');
    expect(fast.body.errors![0]!.extensions).toMatchObject({ code: 'SOURCE_CIRCUIT_OPEN', source: 'analytics', retryable: true });
    expect(fast.body.errors![0]!.extensions!.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(calls(await stack.stats('analytics'), 'POST /v1/metrics/query')).toBe(before);

    await stack.faults('analytics', {});
    await new Promise((r) => setTimeout(r, 900));
    const probe = await stack.gql<AnyData>(METRICS, { id: stack.userId(31) });
    expect(probe.body.errors).toBeUndefined();
    expect((await state()).state).toBe('CLOSED');
  });

  it('an outage is one warn line when it opens and one info line when it closes, however many probes fail between', async () => {
    const stack = await stackWith({
      tuning: { analytics: { retryMaxAttempts: 1, breakerMinCalls: 4, breakerFailureRatio: 0.5, breakerWindowMs: 10_000, breakerHalfOpenAfterMs: 300 } },
    });
    const from = stack.logs.length;
    const lines = (text: string) =>
      stack.logs
        .slice(from)
        .map((l) => JSON.parse(l) as { level: number; msg: string; failedProbes?: number })
        .filter((l) => l.msg.startsWith(text));
    const state = async () => ((await stack.gql<AnyData>(`{ sources { name state } }`)).body.data!.sources as AnyData[]).find((s) => s.name === 'analytics')!.state as string;

    await stack.faults('analytics', { errorRate: 1, errorStatus: 503 });
    for (let i = 0; i < 6 && (await state()) === 'CLOSED'; i++) await stack.gql(METRICS, { id: stack.userId(40 + i) });
    expect(await state()).toBe('OPEN');
    // Three failed probes: each one re-opens the circuit.
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 350));
      const probe = await stack.gql<AnyData>(METRICS, { id: stack.userId(50 + i) });
      expect(probe.body.errors![0]!.extensions!.code).toBe('SOURCE_UNAVAILABLE');
    }
    await stack.faults('analytics', {});
    await new Promise((r) => setTimeout(r, 350));
    expect((await stack.gql<AnyData>(METRICS, { id: stack.userId(60) })).body.errors).toBeUndefined();

    const opened = lines('circuit opened');
    expect(opened.map((l) => l.level)).toEqual([40]);
    expect(lines('circuit still open').map((l) => l.failedProbes)).toEqual([1, 2, 3]);
    expect(lines('circuit still open').every((l) => l.level === 20)).toBe(true);
    const closed = lines('circuit closed');
    expect(closed).toHaveLength(1);
    expect(closed[0]).toMatchObject({ level: 30, failedProbes: 3 });
  });

  it('malformed 200s count as failures: they open it and show in the error rate', async () => {
    const stack = await stackWith({ tuning: { analytics: { retryMaxAttempts: 1, breakerMinCalls: 4, breakerFailureRatio: 0.5 } } });
    await stack.faults('analytics', { malformedRate: 1, malformedKind: 'shape' });
    for (let i = 0; i < 6; i++) await stack.gql(METRICS, { id: stack.userId(50 + i) });
    const sources = (await stack.gql<AnyData>(`{ sources { name state errorRate } }`)).body.data!.sources as AnyData[];
    expect(sources.find((s) => s.name === 'analytics')).toMatchObject({ state: 'OPEN', errorRate: 1 });
  });

  it('404s and other client errors do not open it', async () => {
    const stack = await stackWith({ tuning: { analytics: { retryMaxAttempts: 1, breakerMinCalls: 3, breakerFailureRatio: 0.3 } } });
    for (let i = 0; i < 8; i++) await stack.gateway.sources.analytics.events(`auth0|ghost-${i}`, 1, null);
    await stack.faults('analytics', { errorRate: 1, errorStatus: 400 });
    for (let i = 0; i < 8; i++) await stack.gql(METRICS, { id: stack.userId(40 + i) });
    const sources = (await stack.gql<AnyData>(`{ sources { name state errorRate } }`)).body.data!.sources as AnyData[];
    expect(sources.find((s) => s.name === 'analytics')).toMatchObject({ state: 'CLOSED', errorRate: 0 });
  });
});

describe('deadline', () => {
  it('a hanging upstream costs the request its deadline, not the per-attempt timeout; finished fields keep their data', async () => {
    const stack = await stackWith({ requestDeadlineMs: 600, tuning: { analytics: { timeoutMs: 5000 } } });
    await stack.faults('analytics', { down: 'hang' });
    const started = performance.now();
    const res = await stack.gql<AnyData>(`query($id: ID!) { user(id: $id) { name metrics { pageViews } unreadNotificationCount } }`, { id: stack.userId(50) });
    const elapsed = performance.now() - started;
    // The attempt's own timeout is capped at the deadline left, and undici's timers are coarse: about the deadline, not the 5 s.
    expect(elapsed).toBeGreaterThanOrEqual(500);
    expect(elapsed).toBeLessThan(2000);
    expect(res.body.data!.user.name).toBe(stack.upstreams.dataset.users[50]!.name);
    expect(res.body.data!.user.unreadNotificationCount).toBeTypeOf('number');
    expect(res.body.data!.user.metrics).toBeNull();
    expect(res.body.errors![0]!.extensions).toMatchObject({ code: 'SOURCE_TIMEOUT', source: 'analytics' });
    // The aborted call is not retried and does not count against analytics' health.
    expect(calls(await stack.stats('analytics'), 'POST /v1/metrics/query')).toBe(1);
  });
});

describe('bulkhead and local rate limit', () => {
  it('the bulkhead caps concurrent calls to a source; the overflow fails fast', async () => {
    const stack = await stackWith({ tuning: { notifications: { bulkheadLimit: 2, bulkheadQueue: 0, retryMaxAttempts: 1, breakerMinCalls: 1000 } } });
    await stack.faults('notifications', { latencyMs: 300, routes: ['GET /v1/users/:id/notifications'] });
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => stack.gql<AnyData>(NOTIFICATIONS, { id: stack.userId(60 + i) })));
    const codes = results.map((r) => (r.body.errors?.[0]?.extensions?.code as string | undefined) ?? 'OK');
    expect(codes.filter((c) => c === 'OK')).toHaveLength(2);
    expect(codes.filter((c) => c === 'SOURCE_UNAVAILABLE')).toHaveLength(4);
    expect(calls(await stack.stats('notifications'), 'GET /v1/users/:id/notifications')).toBe(2);
  });

  it('our own token bucket keeps the upstream under its limit: waits while the deadline allows, then SOURCE_RATE_LIMITED without a call', async () => {
    const stack = await stackWith({ requestDeadlineMs: 1000, tuning: { notifications: { rateLimitPerSec: 5, rateLimitBurst: 1 } } });
    await stack.faults('notifications', { rateLimitPerSec: 6 });
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => stack.gql<AnyData>(NOTIFICATIONS, { id: stack.userId(70 + i) })));
    const ok = results.filter((r) => !r.body.errors).length;
    const limited = results.filter((r) => r.body.errors?.[0]?.extensions?.code === 'SOURCE_RATE_LIMITED');
    // 1 at once plus 5/s over a ~1 s deadline.
    expect(ok).toBeGreaterThanOrEqual(4);
    expect(ok).toBeLessThanOrEqual(7);
    expect(ok + limited.length).toBe(20);
    const s = await stack.stats('notifications');
    expect(s.routes['GET /v1/users/:id/notifications']!.statuses['429']).toBeUndefined();
    expect(calls(s, 'GET /v1/users/:id/notifications')).toBe(ok);
    const health = (await stack.gql<AnyData>(`{ sources { name rateLimiter } }`)).body.data!.sources as AnyData[];
    expect(health.find((h) => h.name === 'notifications')!.rateLimiter).toBe('LOCAL');
  });
});

describe('OAuth2 to identity', () => {
  it('across a 2 s token lifetime and 20 s of traffic no query fails, and tokens are fetched one at a time, ahead of expiry', async () => {
    const stack = await stackWith({ upstreams: { tokenTtlSeconds: 2 } });
    const until = Date.now() + 20_000;
    let queries = 0;
    const failures: unknown[] = [];
    await Promise.all(
      Array.from({ length: 8 }, async (_, worker) => {
        for (let i = 0; Date.now() < until; i++) {
          const res = await stack.gql<AnyData>(`query($id: ID!) { user(id: $id) { name } }`, { id: stack.userId((worker * 100 + i) % 1000) });
          queries++;
          if (res.body.errors || !res.body.data?.user) failures.push(res.body.errors);
          await new Promise((r) => setTimeout(r, 20));
        }
      }),
    );
    expect(failures).toEqual([]);
    expect(queries).toBeGreaterThan(400);
    const tokenCalls = calls(await stack.stats('identity'), 'POST /oauth/token');
    // Refreshed at 80 % of 2 s: about 12 in 20 s. One per request would be hundreds.
    expect(tokenCalls).toBeGreaterThanOrEqual(8);
    expect(tokenCalls).toBeLessThanOrEqual(16);
    expect((await stack.stats('identity')).routes['GET /api/v2/users']!.statuses['401']).toBeUndefined();
  }, 40_000);

  it("a token endpoint saying 429: identity's fields fail typed, the rest answers, and the endpoint is asked once a window, not once a query", async () => {
    const stack = await stackWith({ upstreams: { tokenTtlSeconds: 1 }, tuning: { identity: { retryMaxAttempts: 1 } } });
    await stack.faults('identity', { errorRate: 1, errorStatus: 429, routes: ['POST /oauth/token'] });
    // Whatever token the server holds has expired.
    await new Promise((r) => setTimeout(r, 1100));
    const started = Date.now();
    for (let i = 0; i < 30; i++) {
      const res = await stack.gql<AnyData>(METRICS, { id: stack.userId(300 + i) });
      expect(res.body.data!.user.metrics.pageViews).toBeTypeOf('number');
      expect(res.body.errors!.map((e) => [e.path!.at(-1), e.extensions!.code])).toEqual([['name', 'SOURCE_RATE_LIMITED']]);
    }
    // The vendor's 429 names the end of its one-second window (x-ratelimit-reset): about one try a second.
    const seconds = Math.ceil((Date.now() - started) / 1000);
    expect(calls(await stack.stats('identity'), 'POST /oauth/token')).toBeLessThanOrEqual(seconds + 1);
  });

  it("a token answer that trickles (a byte every 100 ms): the query ends at its deadline, the fetch at identity's timeout, and the next query gets a token", async () => {
    // A deadline shorter than identity's timeout: the caller stops waiting for the shared fetch first, the fetch itself later.
    const stack = await stackWith({ requestDeadlineMs: 400, upstreams: { tokenTtlSeconds: 1 }, tuning: { identity: { retryMaxAttempts: 1, timeoutMs: 1500 } } });
    await stack.faults('identity', { down: 'trickle', routes: ['POST /oauth/token'] });
    await new Promise((r) => setTimeout(r, 1100));
    const started = performance.now();
    const first = await stack.gql<AnyData>(METRICS, { id: stack.userId(340) });
    // Bounded only between bytes and never raced with the deadline, the fetch held this query until the token's last
    // byte, 12 s later.
    expect(performance.now() - started).toBeLessThan(1000);
    expect(first.body.data!.user.metrics.pageViews).toBeTypeOf('number');
    expect(first.body.errors!.map((e) => [e.path!.at(-1), e.extensions!.code])).toEqual([['name', 'SOURCE_TIMEOUT']]);
    // The trickle goes on (its token is over 10 s of bytes); new requests are answered again.
    await stack.faults('identity', {});
    // Past the fetch's 1.5 s and the half second a failed fetch waits before the next.
    await new Promise((r) => setTimeout(r, 1800));
    const second = await stack.gql<AnyData>(METRICS, { id: stack.userId(341) });
    expect(second.body.errors).toBeUndefined();
    expect(second.body.data!.user.name).toBe(stack.upstreams.dataset.users[341]!.name);
    expect(calls(await stack.stats('identity'), 'POST /oauth/token')).toBe(2);
  });
});
