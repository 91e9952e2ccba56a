import type { Deadline } from '../../resilience/deadline.js';
import { asError } from '../../errors.js';
import { ApiKeyAuth } from '../auth.js';
import { cachedEntity, defineSource } from '../define-source.js';
import type { EventPage, EventPageKey, MetricsEntity, MetricsKey, MetricsRange } from '../models.js';
import { AnalyticsSource } from './analytics-source.js';
import { CompactMetrics } from './compact-metrics.js';

/** Analytics (UPSTREAMS.md): API key, Unix timestamps, a bulk metrics query, cursor-paged events, Retry-After in seconds. */
export const analytics = defineSource({
  name: 'analytics',
  description: 'the analytics vendor (metrics, events)',
  env: { url: 'ANALYTICS_URL', credentials: { apiKey: 'ANALYTICS_API_KEY' } },
  tuning: { rateLimitPerSec: 80, rateLimitBurst: 8 },
  entities: {
    'analytics.metrics': cachedEntity<MetricsKey, MetricsEntity | null>()({
      env: 'ANALYTICS_METRICS',
      what: "a user's metrics for one range and granularity",
      defaults: { ttlMs: 60_000, staleWhileRevalidateMs: 300_000, staleIfErrorMs: 3_600_000 },
      group: (k) => k.userId,
      variant: (k) => rangeKey(k.range),
      fetch: metricsByRange,
      stored: { encode: CompactMetrics.toStored, decode: CompactMetrics.fromStored },
    }),
    'analytics.events': cachedEntity<EventPageKey, EventPage | null>()({
      env: 'ANALYTICS_EVENTS',
      what: "one page of a user's events",
      defaults: { ttlMs: 30_000, staleWhileRevalidateMs: 60_000, staleIfErrorMs: 900_000 },
      // Pages are cursor-paged per user: one call per key, each failing alone.
      perKey: true,
      group: (k) => k.userId,
      variant: (k) => `${k.limit}:${k.cursor ?? ''}`,
      fetch: (source: AnalyticsSource, keys, deadline) => Promise.all(keys.map((k) => source.events(k.userId, k.limit, k.cursor, deadline).catch(asError))),
    }),
  },
  create: (base, endpoint) => new AnalyticsSource({ ...base, auth: new ApiKeyAuth('x-api-key', endpoint.apiKey) }),
});

/** One bulk query per distinct range; most requests have exactly one. */
async function metricsByRange(source: AnalyticsSource, keys: readonly MetricsKey[], deadline: Deadline): Promise<ReadonlyArray<MetricsEntity | null | Error>> {
  const byRange = new Map<string, { range: MetricsRange; ids: string[] }>();
  for (const key of keys) {
    const r = rangeKey(key.range);
    let group = byRange.get(r);
    if (!group) byRange.set(r, (group = { range: key.range, ids: [] }));
    group.ids.push(key.userId);
  }
  const results = new Map<string, Map<string, MetricsEntity | Error> | Error>();
  await Promise.all(
    [...byRange].map(async ([r, group]) => {
      results.set(r, await source.metrics(group.ids, group.range, deadline).catch(asError));
    }),
  );
  return keys.map((key) => {
    const found = results.get(rangeKey(key.range))!;
    return found instanceof Error ? found : (found.get(key.userId) ?? null);
  });
}

/**
 * A list's keys share one range object, and each key's range string was asked
 * for three times (its cache variant, its batch's grouping, its answer): the
 * last range's string is kept, so a list makes it once, not ~150 times. One
 * slot, not a WeakMap: a dashboard's range is new each request, and a WeakMap's
 * set cost it more (0.7 % of a cold dashboard's CPU) than the string.
 */
let lastRange: MetricsRange | undefined;
let lastRangeKey = '';

function rangeKey(range: MetricsRange): string {
  if (range !== lastRange) {
    lastRangeKey = `${range.fromSec}:${range.toSec}:${range.granularity}`;
    lastRange = range;
  }
  return lastRangeKey;
}
