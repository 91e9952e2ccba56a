import { expect, it } from 'vitest';
import { BUCKET_MS, BUCKETS, statusOf, type SourcePart } from '../src/observability/status-history.js';
import { stackPool } from './helpers/stack.js';

/**
 * What `/status` draws, as `/status/data` serves it: per source, calls and
 * errors over 15 minutes, the cache hit ratio of its entities, the learned
 * rate against its ceiling, the breaker; admin only. (The page itself, in a
 * browser: test/browser.test.ts.)
 */
const stackWith = stackPool((o) => ({ cache: { enabled: true }, ...o }));

it('counts each source’s calls, failures and cache hits, and is an admin’s to read', async () => {
  const stack = await stackWith();
  const data = async (token: string) => fetch(stack.url.replace('/graphql', '/status/data'), { headers: { authorization: `Bearer ${token}` } });
  const user = stack.userId(120);
  const Q = `query($u: ID!) { user(id: $u) { name metrics { pageViews } } }`;
  await stack.gql(Q, { u: user });
  await stack.gql(Q, { u: user });
  await stack.faults('analytics', { errorRate: 1, errorStatus: 503 });
  await stack.gql(Q, { u: stack.userId(121) });

  expect((await data(await stack.token({ admin: false }))).status).toBe(403);
  const body = (await (await data(await stack.token())).json()) as { sources: Record<string, any>[] };
  const identity = body.sources.find((s) => s.name === 'identity')!;
  const analytics = body.sources.find((s) => s.name === 'analytics')!;
  // Four profile lookups (the pool's warm-up, then the three queries): only the repeat was a hit.
  expect(identity.last15m.errorRate).toBe(0);
  expect(identity.cacheHitRatio).toBe(0.25);
  expect(identity.breaker).toBe('CLOSED');
  expect(identity.rateLimitPerSec).toBe(40);
  expect(identity.ceilingPerSec).toBe(40);
  // Analytics: one call that answered, then one that failed on every attempt.
  expect(analytics.last15m.calls).toBeGreaterThanOrEqual(2);
  expect(analytics.last15m.errorRate).toBeGreaterThan(0.5);
  expect(analytics.series.requestsPerSec).toHaveLength(60);
  // The newest bucket that saw calls (a 15 s bucket boundary may fall between the failing query and this read).
  const seen = (analytics.series.errorRate as (number | null)[]).filter((r) => r !== null);
  expect(seen.at(-1)).toBeGreaterThan(0.5);
});

it('the parts of two workers make one status: counts summed, the worst breaker, drift by place, rates as shares or one shared', () => {
  const last = (BUCKETS - 1) * BUCKET_MS;
  const part = (over: Partial<SourcePart>): SourcePart => ({
    name: 'identity',
    breaker: 'CLOSED',
    rateLimitPerSec: 20,
    ceilingPerSec: 20,
    lastMinuteCalls: 30,
    drift: [],
    buckets: [],
    p50Ms: null,
    p99Ms: null,
    ...over,
  });
  const a = part({
    buckets: [{ start: last, calls: 10, errors: 1, cacheHits: 3, cacheLookups: 4, p50Ms: 20, p99Ms: 40 }],
    p50Ms: 20,
    p99Ms: 40,
    drift: [{ endpoint: 'GET /x', kind: 'unknown', path: 'a', count: 2 }],
  });
  const b = part({
    breaker: 'OPEN',
    buckets: [{ start: last, calls: 30, errors: 0, cacheHits: 1, cacheLookups: 4, p50Ms: 10, p99Ms: 90 }],
    p50Ms: 10,
    p99Ms: 90,
    drift: [
      { endpoint: 'GET /x', kind: 'unknown', path: 'a', count: 3 },
      { endpoint: 'GET /x', kind: 'missing', path: 'b', count: 1 },
    ],
  });
  const [split] = statusOf([[a], [b]], 0, false);
  expect(split!.last15m).toEqual({ calls: 40, errorRate: 0.025, p50Ms: 12.5, p99Ms: 90 });
  expect(split!.breaker).toBe('OPEN');
  expect([split!.rateLimitPerSec, split!.ceilingPerSec, split!.headroomPerSec]).toEqual([40, 40, 39]);
  expect(split!.cacheHitRatio).toBe(0.5);
  expect(split!.drift).toEqual([
    { endpoint: 'GET /x', kind: 'unknown', path: 'a', count: 5 },
    { endpoint: 'GET /x', kind: 'missing', path: 'b', count: 1 },
  ]);
  expect([split!.series.requestsPerSec.at(-1), split!.series.errorRate.at(-1), split!.series.p99Ms.at(-1)]).toEqual([2.67, 0.025, 90]);
  expect(split!.series.requestsPerSec.slice(0, -1).every((r) => r === 0)).toBe(true);
  // Through Redis, every worker says the one shared rate.
  const [shared] = statusOf([[a], [b]], 0, true);
  expect([shared!.rateLimitPerSec, shared!.ceilingPerSec, shared!.headroomPerSec]).toEqual([20, 20, 19]);
  // One process: its own figures, as they were.
  expect(statusOf([[a]], 0, false)[0]!.last15m).toEqual({ calls: 10, errorRate: 0.1, p50Ms: 20, p99Ms: 40 });
});
