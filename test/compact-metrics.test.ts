import { describe, expect, it } from 'vitest';
import { approximateJsonLength } from '../src/cache/json-size.js';
import { CompactMetrics } from '../src/sources/analytics/compact-metrics.js';

/** The metrics entity that keeps its series as numbers reads, serializes and weighs as the plain entity it stands for. */
describe('compact metrics', () => {
  const points = Array.from({ length: 30 }, (_, i) => ({ ts: 1_704_067_200 + i * 86_400, page_views: i * 3, sessions: i }));
  const metrics = CompactMetrics.fromVendor(1395, 435, 12.5, 0.25, '2024-01-30T10:00:00.000Z', points);
  const plain = {
    pageViews: 1395,
    sessions: 435,
    avgSessionSeconds: 12.5,
    conversionRate: 0.25,
    lastActiveAt: '2024-01-30T10:00:00.000Z',
    series: points.map((p) => ({ at: new Date(p.ts * 1000).toISOString(), pageViews: p.page_views, sessions: p.sessions })),
  };

  it('reads as the plain entity: fields, and a series of ISO points in order', () => {
    expect(metrics.series).toEqual(plain.series);
    expect(metrics.pageViews).toBe(1395);
    expect(metrics.lastActiveAt).toBe(plain.lastActiveAt);
  });

  it('serializes (L2, a hash of the record) as the plain entity', () => {
    expect(JSON.stringify(metrics)).toBe(JSON.stringify(plain));
  });

  it('weighs in L1 within 10 % of what the plain entity is estimated at, without making its points', () => {
    const compact = approximateJsonLength(metrics);
    const estimated = approximateJsonLength(plain);
    expect(Math.abs(compact - estimated) / estimated).toBeLessThan(0.1);
  });

  it('keeps its columns in L2 and comes back from them as the same entity; anything else comes back null', () => {
    const stored = JSON.parse(JSON.stringify(CompactMetrics.toStored(metrics))) as unknown;
    const back = CompactMetrics.fromStored(stored);
    expect(JSON.stringify(back)).toBe(JSON.stringify(plain));
    expect(JSON.stringify(stored).length).toBeLessThan(JSON.stringify(plain).length / 2);
    // A plain entity (not made by the source) is stored the same way.
    expect(CompactMetrics.toStored(plain)).toEqual(CompactMetrics.toStored(metrics));
    const good = stored as Record<string, unknown>;
    for (const bad of [
      null,
      'x',
      plain,
      { ...good, columns: [1, 2] },
      { ...good, columns: [1, 2, '3'] },
      { ...good, columns: [1e20, 2, 3] },
      { ...good, pageViews: '1' },
      { ...good, lastActiveAt: 5 },
    ]) {
      expect(CompactMetrics.fromStored(bad)).toBeNull();
    }
  });
});
