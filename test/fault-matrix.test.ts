import { readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { SourceName } from '../src/errors.js';
import type { FaultProfileInput } from '../simulator/index.js';
import { calls, stackPool, type Stack } from './helpers/stack.js';
import { makeTestTls } from './helpers/tls.js';

/**
 * Every read source × every way a real vendor fails, with the default
 * policies and deadline: HTTP 200, every healthy vendor's data intact, the
 * faulted one typed (or, with a cache, stale and marked), nothing internal in
 * the response or a stack in the logs, and an answer inside the deadline.
 * Driven only through GraphQL and the simulator's admin endpoint.
 */
type AnyData = Record<string, any>;

const FAULTS: [string, FaultProfileInput | 'refuse'][] = [
  ['extra fields', { extraFields: true }],
  ['500', { errorRate: 1, errorStatus: 500 }],
  ['503', { errorRate: 1, errorStatus: 503 }],
  ['hang', { down: 'hang' }],
  // Status and headers on time, then half the body and nothing more: only a timer on the body's reading ends it.
  ['stall mid-body', { down: 'stall' }],
  ['connection refused', 'refuse'],
  ['connection reset', { down: 'reset' }],
  ['429', { errorRate: 1, errorStatus: 429 }],
  ['truncated JSON', { malformedRate: 1, malformedKind: 'syntax' }],
  ['wrong shape', { malformedRate: 1, malformedKind: 'shape' }],
  ['HTML error page', { errorRate: 1, errorStatus: 502, errorBody: 'html' }],
  // Past the default MAX_RESPONSE_BYTES (16 MiB): valid JSON, but too large to read into the heap.
  ['oversized body', { padBodyBytes: 20 * 1024 * 1024 }],
  // Compressed though we never asked (brotli here; gzip and deflate in the size-cap test below).
  ['unasked compression', { contentEncoding: 'br' }],
  // RFC 8259 lets a parser ignore a byte order mark; undici drops it from a plain body, ours from a decoded one.
  ['byte order mark', { byteOrderMark: true }],
  ['byte order mark, compressed', { byteOrderMark: true, contentEncoding: 'gzip' }],
  // Every header a source reads, unreadable: paging and rate limits fall back, the data is the same.
  [
    'headers in garbage',
    {
      headers: {
        link: 'garbage',
        'x-total-count': 'many',
        'x-ratelimit-limit': 'lots',
        'x-ratelimit-remaining': '-1',
        'x-ratelimit-reset': 'soon',
        'retry-after': 'later',
        ratelimit: ';;;',
      },
    },
  ],
];
/** Faults a vendor may ship that must change nothing in the answer. */
const HARMLESS = new Set(['extra fields', 'unasked compression', 'byte order mark', 'byte order mark, compressed', 'headers in garbage']);

const DASHBOARD = `query($id: ID!) { user(id: $id) { id name email metrics { pageViews } events(first: 1) { edges { node { type } } } unreadNotificationCount notifications(first: 2) { totalCount } } }`;

/** The fields each vendor answers in DASHBOARD. */
const FIELDS: Record<'identity' | 'analytics' | 'notifications', string[]> = {
  identity: ['name', 'email'],
  analytics: ['metrics', 'events'],
  notifications: ['unreadNotificationCount', 'notifications'],
};

const DEFAULT_DEADLINE_MS = 3000;
const stackFor = stackPool();

function expectNothingInternal(stack: Stack, text: string): void {
  const c = stack.upstreams.credentials;
  for (const secret of [c.identity.clientSecret, c.identity.clientId, c.analyticsApiKey, c.notificationsToken]) expect(text).not.toContain(secret);
  expect(text).not.toMatch(/\n\s+at |node_modules|\.ts:\d+|injected_fault|<html|nginx|127\.0\.0\.1|stack/i);
}

/** Waits until a refusing upstream listens again (its admin endpoint is down meanwhile). */
async function listening(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (
      await fetch(`${url}/__admin/faults`)
        .then((r) => r.ok)
        .catch(() => false)
    )
      return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url} did not come back`);
}

describe.each(['identity', 'analytics', 'notifications'] as const)('%s failing', (faulted) => {
  it.each(FAULTS)('%s: HTTP 200, the other vendors intact, this one typed, inside the deadline', async (fault, profile) => {
    // A fresh server per case: the breaker and learned limits of one case do not leak into the next.
    const stack = await stackFor();
    const id = stack.userId(20);
    if (profile === 'refuse') await stack.faults(faulted, { down: 'refuse', downForMs: 1500 });
    else await stack.faults(faulted, profile);
    const startedAt = performance.now();
    const res = await stack.gql<AnyData>(DASHBOARD, { id });
    const elapsedMs = performance.now() - startedAt;
    if (profile === 'refuse') await listening(stack.upstreams[faulted].url);

    expect(res.status).toBe(200);
    // The deadline, plus what answering takes on a busy 2-core CI machine.
    expect(elapsedMs).toBeLessThan(DEFAULT_DEADLINE_MS + 700);
    const user = res.body.data!.user;
    expect(user.id).toBe(id);
    for (const [source, fields] of Object.entries(FIELDS)) {
      for (const field of fields) {
        if (source === faulted && !HARMLESS.has(fault)) expect(user[field], field).toBeNull();
        else expect(user[field], `${field} of healthy ${source}`).not.toBeNull();
      }
    }
    if (HARMLESS.has(fault)) {
      expect(res.body.errors).toBeUndefined();
    } else {
      const errors = res.body.errors ?? [];
      expect(errors.map((e) => e.path!.at(-1)).sort()).toEqual([...FIELDS[faulted]].sort());
      for (const e of errors) {
        expect(e.extensions!.source).toBe(faulted);
        expect(e.extensions!.code).toMatch(/^SOURCE_(TIMEOUT|UNAVAILABLE|RATE_LIMITED|CIRCUIT_OPEN|BAD_RESPONSE)$/);
        expect(typeof e.extensions!.retryable).toBe('boolean');
      }
    }
    expectNothingInternal(stack, res.text);
    // Expected vendor failures: no error-level line, no stack, at most one warn line per source for this request.
    const lines = stack.logs.map((l) => JSON.parse(l) as AnyData);
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
    expect(stack.logs.join('')).not.toMatch(/"stack"|\\n\s+at /);
    const warned = lines.filter((l) => l.level === 40 && l.requestId !== undefined);
    expect(warned.length).toBeLessThanOrEqual(HARMLESS.has(fault) ? 0 : 1);
    if (!HARMLESS.has(fault)) expect(warned[0]).toMatchObject({ source: faulted as SourceName, code: expect.stringMatching(/^SOURCE_/) });
  });
});

describe('a hang with the default configuration', () => {
  // `stall`: the headers arrive, the body stops halfway. Only the per-attempt body timer frees the attempt for a retry.
  it.each(['hang', 'stall'] as const)('%s: answers within 5 s with every other vendor and SOURCE_TIMEOUT for the hung one, retries included', async (down) => {
    const stack = await stackFor();
    await stack.faults('analytics', { down });
    const startedAt = performance.now();
    const res = await stack.gql<AnyData>(DASHBOARD, { id: stack.userId(21) });
    const elapsedMs = performance.now() - startedAt;
    expect(elapsedMs).toBeLessThan(5000);
    expect(res.body.data!.user.name).toBeTypeOf('string');
    expect(res.body.data!.user.unreadNotificationCount).toBeTypeOf('number');
    expect(res.body.errors!.map((e) => e.extensions!.code)).toEqual(['SOURCE_TIMEOUT', 'SOURCE_TIMEOUT']);
    // Attempts shared the deadline: more than one was made, none started in its last 250 ms.
    const stats = await stack.stats('analytics');
    expect(stats.totalCalls).toBeGreaterThanOrEqual(3);
    // Whether an attempt's own timer or the deadline ended the last one, the line names what the vendor did.
    const warned = stack.logs.map((l) => JSON.parse(l) as AnyData).filter((l) => l.level === 40 && l.requestId !== undefined);
    expect(warned).toHaveLength(1);
    expect(warned[0]!.detail).toMatch(down === 'hang' ? /no answer within \d+ ms/ : /the body stopped arriving for \d+ ms/);
  });

  // One attempt, so its own timer ends it long before the deadline could (which would say only "cancelled").
  it.each([
    ['hang', 'no answer within 1000 ms'],
    ['stall', 'the body stopped arriving for 1000 ms'],
  ] as const)('%s: the warn line says which, a vendor that never answered or one whose answer stopped halfway', async (down, detail) => {
    const stack = await stackFor({ tuning: { analytics: { retryMaxAttempts: 1 } } });
    await stack.faults('analytics', { down });
    await stack.gql<AnyData>(DASHBOARD, { id: stack.userId(25) });
    const warned = stack.logs.map((l) => JSON.parse(l) as AnyData).filter((l) => l.level === 40 && l.requestId !== undefined);
    expect(warned.map((l) => [l.source, l.code, l.detail])).toEqual([['analytics', 'SOURCE_TIMEOUT', detail]]);
  });
});

describe('an answer larger than <SOURCE>_MAX_RESPONSE_BYTES', () => {
  it('is cut off as it arrives and fails its fields as SOURCE_BAD_RESPONSE, not retried; one under the limit is read', async () => {
    const stack = await stackFor({ tuning: { analytics: { maxResponseBytes: 64 * 1024 } } });
    const metricsRoute = 'POST /v1/metrics/query';
    await stack.faults('analytics', { padBodyBytes: 4 * 1024 * 1024, routes: [metricsRoute] });
    const res = await stack.gql<AnyData>(`query($id: ID!) { user(id: $id) { name metrics { pageViews } unreadNotificationCount } }`, { id: stack.userId(22) });
    expect(res.status).toBe(200);
    expect(res.body.data!.user).toMatchObject({ name: expect.any(String), metrics: null, unreadNotificationCount: expect.any(Number) });
    expect(res.body.errors!.map((e) => [e.path!.at(-1), e.extensions!.code, e.extensions!.retryable])).toEqual([['metrics', 'SOURCE_BAD_RESPONSE', false]]);
    // One call: the same request would get the same answer.
    expect(calls(await stack.stats('analytics'), metricsRoute)).toBe(1);
    const warned = stack.logs.map((l) => JSON.parse(l) as AnyData).filter((l) => l.level === 40 && l.source === 'analytics');
    expect(warned).toEqual([expect.objectContaining({ code: 'SOURCE_BAD_RESPONSE', detail: expect.stringContaining('ANALYTICS_MAX_RESPONSE_BYTES') })]);

    await stack.faults('analytics', { padBodyBytes: 32 * 1024, routes: [metricsRoute] });
    const under = await stack.gql<AnyData>(`query($id: ID!) { user(id: $id) { metrics { pageViews } } }`, { id: stack.userId(23) });
    expect(under.body.errors).toBeUndefined();
    expect(under.body.data!.user.metrics.pageViews).toBeTypeOf('number');
  });

  it('bounds what a compressed answer decodes to: 4 MB of padding in a few KB of gzip or deflate fails the same way; one under the limit reads', async () => {
    const stack = await stackFor({ tuning: { analytics: { maxResponseBytes: 64 * 1024 } } });
    const metricsRoute = 'POST /v1/metrics/query';
    const query = `query($id: ID!) { user(id: $id) { metrics { pageViews } } }`;
    for (const [i, contentEncoding] of (['gzip', 'deflate'] as const).entries()) {
      await stack.faults('analytics', { padBodyBytes: 4 * 1024 * 1024, contentEncoding, routes: [metricsRoute] });
      const bomb = await stack.gql<AnyData>(query, { id: stack.userId(30 + i) });
      expect(
        bomb.body.errors!.map((e) => [e.extensions!.code, e.extensions!.retryable]),
        contentEncoding,
      ).toEqual([['SOURCE_BAD_RESPONSE', false]]);
      await stack.faults('analytics', { padBodyBytes: 32 * 1024, contentEncoding, routes: [metricsRoute] });
      const under = await stack.gql<AnyData>(query, { id: stack.userId(40 + i) });
      expect(under.body.errors, contentEncoding).toBeUndefined();
      expect(under.body.data!.user.metrics.pageViews).toBeTypeOf('number');
    }
    expect(calls(await stack.stats('analytics'), metricsRoute)).toBe(4);
    const warned = stack.logs.map((l) => JSON.parse(l) as AnyData).filter((l) => l.level === 40 && l.source === 'analytics');
    expect(warned.map((l) => l.detail)).toEqual([expect.stringContaining('ANALYTICS_MAX_RESPONSE_BYTES'), expect.stringContaining('ANALYTICS_MAX_RESPONSE_BYTES')]);
  });
});

describe('an answer about another user than the one asked', () => {
  it('notifications answering for someone else: the field fails SOURCE_BAD_RESPONSE, none of theirs is shown or cached, the rest answers', async () => {
    const stack = await stackFor();
    const { dataset } = stack.upstreams;
    const [asked, other] = [26, 27];
    await stack.faults('notifications', { answerFor: stack.userId(other) });
    const query = `query($id: ID!) { user(id: $id) { name unreadNotificationCount notifications(first: 5) { edges { node { id } } } } }`;
    const res = await stack.gql<AnyData>(query, { id: stack.userId(asked) });
    expect(res.status).toBe(200);
    const user = res.body.data!.user;
    expect(user.name).toBe(dataset.users[asked]!.name);
    // The bulk count names its users in its answer: not affected.
    expect(user.unreadNotificationCount).toBe(dataset.unreadCountOf(asked));
    expect(user.notifications).toBeNull();
    expect(res.body.errors!.map((e) => [e.path!.at(-1), e.extensions!.code])).toEqual([['notifications', 'SOURCE_BAD_RESPONSE']]);
    for (const n of dataset.notificationsOf(other)) expect(res.text).not.toContain(n.id);
    const warned = stack.logs.map((l) => JSON.parse(l) as AnyData).filter((l) => l.level === 40 && l.requestId !== undefined);
    expect(warned.map((l) => l.detail)).toEqual(['GET /v1/users/:id/notifications: the answer is about another user than the one asked']);
    // Nothing of it was kept: once the vendor answers right, the user's own notifications.
    await stack.faults('notifications', {});
    const again = await stack.gql<AnyData>(query, { id: stack.userId(asked) });
    expect(again.body.data!.user.notifications.edges.map((e: AnyData) => e.node.id)).toEqual(
      dataset
        .notificationsOf(asked)
        .slice(0, 5)
        .map((n) => n.id),
    );
  });
});

describe("an answer whose headers are larger than Node's 16 KiB", () => {
  it("up to 64 KiB (a CDN's cookies, a long policy header) is read; past it the field fails as SOURCE_BAD_RESPONSE, not retried", async () => {
    const stack = await stackFor();
    const metricsRoute = 'POST /v1/metrics/query';
    const query = `query($id: ID!) { user(id: $id) { metrics { pageViews } } }`;
    // Before, 20 KiB of headers failed every call as "network error UND_ERR_HEADERS_OVERFLOW", retried 3 times.
    await stack.faults('analytics', { headers: { 'set-cookie': 'c'.repeat(40 * 1024) }, routes: [metricsRoute] });
    const read = await stack.gql<AnyData>(query, { id: stack.userId(50) });
    expect(read.body.errors).toBeUndefined();
    expect(read.body.data!.user.metrics.pageViews).toBeTypeOf('number');
    expect(calls(await stack.stats('analytics'), metricsRoute)).toBe(1);

    await stack.faults('analytics', { headers: { 'set-cookie': 'c'.repeat(100 * 1024) }, routes: [metricsRoute] });
    const over = await stack.gql<AnyData>(query, { id: stack.userId(51) });
    expect(over.body.errors!.map((e) => [e.extensions!.code, e.extensions!.retryable])).toEqual([['SOURCE_BAD_RESPONSE', false]]);
    expect(calls(await stack.stats('analytics'), metricsRoute)).toBe(2);
    const warned = stack.logs.map((l) => JSON.parse(l) as AnyData).filter((l) => l.level === 40 && l.source === 'analytics');
    expect(warned.map((l) => l.detail)).toEqual(["the answer's headers are larger than 64 KiB"]);
  });
});

describe('a vendor whose TLS certificate is refused (expired, self-signed, another name, an unknown CA)', () => {
  it('fails its fields as SOURCE_UNAVAILABLE after one handshake, not retried, and the line names the certificate', async () => {
    const tls = makeTestTls();
    let handshakes = 0;
    const vendor = createHttpsServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) }, (_req, res) => res.end('{}'));
    vendor.on('connection', () => handshakes++);
    await new Promise<void>((r) => vendor.listen(0, '127.0.0.1', r));
    try {
      // Signed by a CA this process does not trust: what an expired or self-signed certificate also gets.
      const url = `https://127.0.0.1:${(vendor.address() as AddressInfo).port}`;
      const stack = await stackFor({ endpoints: (real) => ({ ...real, analytics: { ...real.analytics, url } }) });
      const res = await stack.gql<AnyData>(`query($id: ID!) { user(id: $id) { name metrics { pageViews } } }`, { id: stack.userId(60) });
      expect(res.body.data!.user.name).toBeTypeOf('string');
      expect(res.body.errors!.map((e) => [e.path!.at(-1), e.extensions!.code, e.extensions!.retryable])).toEqual([['metrics', 'SOURCE_UNAVAILABLE', false]]);
      expect(handshakes).toBe(1);
      const warned = stack.logs.map((l) => JSON.parse(l) as AnyData).filter((l) => l.level === 40 && l.source === 'analytics');
      expect(warned.map((l) => l.detail)).toEqual([expect.stringMatching(/^the vendor's TLS certificate was refused: UNABLE_TO_VERIFY_LEAF_SIGNATURE/)]);
    } finally {
      await new Promise<void>((r) => vendor.close(() => r()));
      rmSync(tls.dir, { recursive: true, force: true });
    }
  });
});

describe('a vendor host name that does not resolve (NXDOMAIN: a typo in <SOURCE>_URL, a record removed)', () => {
  // `.invalid` is never a registered name (RFC 6761): the resolver answers that it does not exist.
  it('fails its fields as SOURCE_UNAVAILABLE, not retried, and the line names the host and the setting to check', async () => {
    const stack = await stackFor({ endpoints: (real) => ({ ...real, analytics: { ...real.analytics, url: 'http://analytics.invalid:4101' } }) });
    const res = await stack.gql<AnyData>(`query($id: ID!) { user(id: $id) { name metrics { pageViews } } }`, { id: stack.userId(61) });
    expect(res.body.data!.user.name).toBeTypeOf('string');
    expect(res.body.errors!.map((e) => [e.path!.at(-1), e.extensions!.code, e.extensions!.retryable])).toEqual([['metrics', 'SOURCE_UNAVAILABLE', false]]);
    const metrics = await (await fetch(stack.url.replace('/graphql', '/metrics'))).text();
    expect(metrics).not.toMatch(/gateway_upstream_retries_total\{source="analytics"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/gateway_upstream_requests_total\{source="analytics",[^}]*outcome="SOURCE_UNAVAILABLE"\} 1\n/);
    const warned = stack.logs.map((l) => JSON.parse(l) as AnyData).filter((l) => l.level === 40 && l.source === 'analytics');
    expect(warned.map((l) => l.detail)).toEqual(["the host name analytics.invalid does not resolve (ENOTFOUND): is ANALYTICS_URL right, or the proxy's where one is set?"]);
  });
});
