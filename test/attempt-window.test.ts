import { describe, expect, it } from 'vitest';
import { AttemptWindow } from '../src/observability/attempt-window.js';

describe('a source attempt window (Query.sources: error rate, calls, latency)', () => {
  it('keeps the newest attempts once full: calls stop at the capacity, the percentiles are of the newest', () => {
    const w = new AttemptWindow(60_000, 100);
    // 100 slow failures, then 150 fast successes: only the last 100 (all fast, none failed) remain.
    for (let i = 0; i < 100; i++) w.add(1000 + i, 500, true);
    for (let i = 0; i < 150; i++) w.add(2000 + i, i + 1, false);
    const s = w.summary(3000);
    expect(s.calls).toBe(100);
    expect(s.errorRate).toBe(0);
    // Durations 51..150: p50 is the 51st smallest, p99 the 100th.
    expect(s.latencyMs).toEqual({ p50: 101, p95: 146, p99: 150 });
  });

  it('forgets attempts older than its span, and sorts durations as numbers (10 after 9)', () => {
    const w = new AttemptWindow(60_000, 100);
    w.add(0, 1000, true);
    w.add(0, 1000, true);
    for (const [at, ms, failed] of [
      [70_000, 9, false],
      [70_001, 10, true],
      [70_002, 100, false],
      [70_003, 2, false],
    ] as const)
      w.add(at, ms, failed);
    const s = w.summary(100_000);
    expect(s.calls).toBe(4);
    expect(s.errorRate).toBe(0.25);
    expect(s.latencyMs).toEqual({ p50: 10, p95: 100, p99: 100 });
    expect(w.summary(200_000)).toEqual({ errorRate: 0, calls: 0, latencyMs: null });
  });

  it('wraps around its ring many times over without losing order', () => {
    const w = new AttemptWindow(1000, 7);
    for (let t = 0; t < 1000; t++) w.add(t, t, t % 2 === 0);
    // The last 7 attempts (993..999), of which 994, 996 and 998 failed; at 1,995 the span keeps 995..999.
    expect(w.summary(1000)).toMatchObject({ calls: 7, errorRate: 0.429, latencyMs: { p50: 996, p99: 999 } });
    expect(w.summary(1995)).toMatchObject({ calls: 5, errorRate: 0.4, latencyMs: { p50: 997 } });
  });
});
