import { afterEach, describe, expect, it, vi } from 'vitest';
import { metricsRange, userFieldKeys } from '../src/resolvers/user.js';

const HOUR_MS = 3_600_000;

afterEach(() => {
  vi.useRealTimers();
});

describe('a metrics field’s range', () => {
  it('is one object for equal arguments, so a list makes its key string once', () => {
    const a = userFieldKeys.metrics('u1', { granularity: 'DAY' });
    const b = userFieldKeys.metrics('u2', { granularity: 'DAY' });
    expect(b.range).toBe(a.range);
    const explicit = { from: '2026-01-01T00:00:00Z', to: '2026-01-02T00:00:00Z', granularity: 'HOUR' as const };
    const c = userFieldKeys.metrics('u1', { ...explicit });
    expect(c.range).not.toBe(a.range);
    expect(c.range).toEqual({ fromSec: Date.parse(explicit.from) / 1000, toSec: Date.parse(explicit.to) / 1000, granularity: 'HOUR' });
    expect(userFieldKeys.metrics('u2', { ...explicit }).range).toBe(c.range);
    expect(userFieldKeys.metrics('u2', { ...explicit, granularity: 'DAY' }).range.granularity).toBe('DAY');
  });

  it('a default range follows the hour: the next hour’s request gets the next hour’s range', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const start = Date.UTC(2026, 11, 5, 10, 30);
    vi.setSystemTime(start);
    const first = userFieldKeys.metrics('u1', { granularity: 'DAY' }).range;
    expect(first).toEqual(metricsRange(undefined, undefined, 'DAY', start));
    expect(first.toSec).toBe(Date.UTC(2026, 11, 5, 11) / 1000);
    vi.setSystemTime(start + 20 * 60_000); // 10:50, the same hour
    expect(userFieldKeys.metrics('u1', { granularity: 'DAY' }).range).toBe(first);
    vi.setSystemTime(start + HOUR_MS); // 11:30
    const next = userFieldKeys.metrics('u1', { granularity: 'DAY' }).range;
    expect(next.toSec).toBe(first.toSec + 3600);
    expect(next.fromSec).toBe(first.fromSec + 3600);
  });

  it('bad arguments are refused every time, never answered from the last range', () => {
    const good = { from: '2026-01-01T00:00:00Z', to: '2026-01-02T00:00:00Z', granularity: 'DAY' as const };
    userFieldKeys.metrics('u1', good);
    const backwards = { from: good.to, to: good.from, granularity: 'DAY' as const };
    expect(() => userFieldKeys.metrics('u1', backwards)).toThrow(/"from" must be before "to"/);
    expect(() => userFieldKeys.metrics('u1', backwards)).toThrow(/"from" must be before "to"/);
  });
});
