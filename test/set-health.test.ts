import { expect, it } from 'vitest';
import { setHealth, type SourceHealthSnapshot } from '../src/observability/source-health.js';

/** `Query.sources` under WORKERS=N: every worker's view of a source, merged into the set's (docs/operations.md). */
const worker = (over: Partial<SourceHealthSnapshot>): SourceHealthSnapshot => ({
  name: 'analytics',
  state: 'CLOSED',
  rateLimiter: 'LOCAL',
  rateLimitPerSec: 40,
  drift: [],
  calls: 0,
  errorRate: 0,
  latencyMs: null,
  ...over,
});
const drift = (path: string, count: number, firstSeenAt: string, lastSeenAt: string) => ({
  endpoint: 'POST /v1/metrics/query',
  kind: 'unknown' as const,
  path,
  seenType: 'number' as const,
  expectedType: 'none',
  count,
  firstSeenAt,
  lastSeenAt,
});

it('sums calls, weighs the error rate and median by calls, takes the worst tail and breaker, and merges drift by place', () => {
  const a = worker({
    calls: 30,
    errorRate: 0.1,
    latencyMs: { p50: 10, p95: 20, p99: 30 },
    drift: [drift('data[].x', 4, '2026-01-01T00:00:02.000Z', '2026-01-01T00:00:05.000Z')],
  });
  const b = worker({
    state: 'HALF_OPEN',
    calls: 10,
    errorRate: 0.5,
    latencyMs: { p50: 30, p95: 25, p99: 90 },
    drift: [drift('data[].y', 1, '2026-01-01T00:00:01.000Z', '2026-01-01T00:00:01.000Z'), drift('data[].x', 2, '2026-01-01T00:00:01.000Z', '2026-01-01T00:00:09.000Z')],
  });
  const [set] = setHealth([[a], [b]], false);
  expect(set).toMatchObject({ name: 'analytics', state: 'HALF_OPEN', calls: 40, errorRate: 0.2, latencyMs: { p50: 15, p95: 25, p99: 90 }, rateLimitPerSec: 80 });
  // Most recent first; one entry per place, its count the set's and its first and last sighting the set's.
  expect(set!.drift.map((d) => [d.path, d.count, d.firstSeenAt, d.lastSeenAt])).toEqual([
    ['data[].x', 6, '2026-01-01T00:00:01.000Z', '2026-01-01T00:00:09.000Z'],
    ['data[].y', 1, '2026-01-01T00:00:01.000Z', '2026-01-01T00:00:01.000Z'],
  ]);
  // The worker's own records are not changed by the merge.
  expect(a.drift[0]!.count).toBe(4);
});

it('through Redis: the one shared rate, and LOCAL when any worker lost the shared bucket', () => {
  const [shared] = setHealth([[worker({ rateLimiter: 'SHARED', rateLimitPerSec: 80 })], [worker({ rateLimiter: 'SHARED', rateLimitPerSec: 80 })]], true);
  expect([shared!.rateLimitPerSec, shared!.rateLimiter]).toEqual([80, 'SHARED']);
  const [oneLost] = setHealth([[worker({ rateLimiter: 'SHARED', rateLimitPerSec: 80 })], [worker({ rateLimiter: 'LOCAL', rateLimitPerSec: 40 })]], true);
  expect(oneLost!.rateLimiter).toBe('LOCAL');
});

it('a worker without calls adds none to the latency, and one worker is shown as it is', () => {
  const busy = worker({ calls: 5, errorRate: 0.2, latencyMs: { p50: 12, p95: 14, p99: 16 } });
  const [set] = setHealth([[busy], [worker({})]], false);
  expect([set!.calls, set!.errorRate, set!.latencyMs]).toEqual([5, 0.2, { p50: 12, p95: 14, p99: 16 }]);
  expect(setHealth([[worker({})], [worker({})]], false)[0]!.latencyMs).toBeNull();
  expect(setHealth([[busy]], false)).toEqual([busy]);
});
