import { AggregatorRegistry, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { TalliedHistogram } from '../src/observability/tallied-histogram.js';

/** The operation-duration histogram is tallied by hand for speed; what Prometheus and a cluster's primary read must not change. */
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const OBSERVATIONS: [string, string, number][] = [
  ['Dashboard', 'query', 0.004],
  ['Dashboard', 'query', 0.005],
  ['Dashboard', 'query', 0.3],
  ['Dashboard', 'query', 12],
  ['List', 'query', 0.02],
  ['MarkRead', 'mutation', 0.07],
  ['other', 'query', 1],
];

function both() {
  const theirs = new Registry();
  const ours = new Registry();
  const histogram = new Histogram({ name: 'op_seconds', help: 'Operation time.', labelNames: ['operation', 'type'], buckets: BUCKETS, registers: [theirs] });
  const tallied = new TalliedHistogram('op_seconds', 'Operation time.', ['operation', 'type'], BUCKETS, [ours]);
  for (const [operation, type, seconds] of OBSERVATIONS) {
    histogram.labels(operation, type).observe(seconds);
    tallied.observe(operation, type, seconds);
  }
  return { theirs, ours, tallied };
}

describe('TalliedHistogram', () => {
  it('prints the same exposition text as prom-client’s Histogram for the same observations', async () => {
    const { theirs, ours } = both();
    const text = await ours.metrics();
    expect(text).toBe(await theirs.metrics());
    expect(text).toContain('op_seconds_bucket{le="0.005",operation="Dashboard",type="query"} 2');
    expect(text).toContain('op_seconds_bucket{le="+Inf",operation="Dashboard",type="query"} 4');
    expect(text).toContain('op_seconds_count{operation="MarkRead",type="mutation"} 1');
  });

  it('hands the same JSON to a cluster primary, which sums two workers’ series', async () => {
    const { theirs, ours } = both();
    const json = await ours.getMetricsAsJSON();
    expect(json).toEqual(await theirs.getMetricsAsJSON());
    const summed = AggregatorRegistry.aggregate([json, json]);
    const text = await summed.metrics();
    expect(text).toContain('op_seconds_bucket{le="+Inf",operation="Dashboard",type="query"} 8');
    expect(text).toContain('op_seconds_sum{operation="List",type="query"} 0.04');
  });

  it('is emptied by the registry’s reset, and ignores a value that is not a number', async () => {
    const { ours, tallied } = both();
    tallied.observe('Dashboard', 'query', Number.NaN);
    expect(await ours.metrics()).toContain('op_seconds_count{operation="Dashboard",type="query"} 4');
    ours.resetMetrics();
    expect(await ours.metrics()).not.toContain('op_seconds_count');
  });
});
