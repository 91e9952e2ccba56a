import { z } from 'zod';
import type { Deadline } from '../../resilience/deadline.js';
import { HttpSource, pathSegment } from '../http-source.js';
import type { EventPage, MetricsEntity, MetricsRange } from '../models.js';
import type { SourceError } from '../../errors.js';
import { readsAs, readsAsUnit } from '../drift.js';
import {
  count,
  instantOrNever,
  isIntCount,
  lenientObject,
  isoFromUnixMs,
  isoFromUnixSeconds,
  isPlausibleUnixSeconds,
  isUnixSeconds,
  optional,
  readableItems,
  UNIX_UNIT_BOUNDARY,
} from '../normalize.js';
import { nestsDeeperThan } from '../../json-depth.js';
import { ChunkSize, leavesOut, lookupInChunks, unreadableIds } from '../paging.js';
import { CompactMetrics, type VendorSeriesPoint } from './compact-metrics.js';

/** Analytics: API key, Unix seconds and milliseconds, a bulk metrics query, cursor-paged events. */
const MAX_IDS_PER_QUERY = 100;
export const MAX_EVENTS_PER_CALL = 200;
/**
 * Event properties are whatever the vendor's client SDK was sent, so an end
 * user can nest them any depth. Past this, an event's properties are served
 * as `{}` and noted as drift: at a few thousand levels JSON.stringify throws,
 * and the whole response that held them was an internal error.
 */
export const MAX_PROPERTY_DEPTH = 64;

type SeriesPoint = VendorSeriesPoint;

/** Why a series is not an array of points, or null when it is. Fields other than the three are ignored. */
function seriesProblem(points: unknown): string | null {
  if (!Array.isArray(points)) return 'expected an array of points';
  for (let i = 0; i < points.length; i++) {
    const point: unknown = points[i];
    if (typeof point !== 'object' || point === null) return `point ${i}: expected an object`;
    const { ts, page_views, sessions } = point as Record<string, unknown>;
    if (!isUnixSeconds(ts)) return `point ${i}: ts: expected Unix seconds${typeof ts === 'number' && ts >= UNIX_UNIT_BOUNDARY ? ' (this looks like milliseconds)' : ''}`;
    if (!isIntCount(page_views)) return `point ${i}: page_views: expected a non-negative integer up to 2^31 - 1`;
    if (!isIntCount(sessions)) return `point ${i}: sessions: expected a non-negative integer up to 2^31 - 1`;
  }
  return null;
}

/**
 * Checked in one loop, not with a zod object per point: a 100-user answer holds
 * thousands of points, and zod's per-value bookkeeping was over a third of
 * what an uncached list allocated (see bench/RESULTS.md).
 */
const series = readsAs(
  z.custom<SeriesPoint[]>((v) => seriesProblem(v) === null, { error: (issue) => seriesProblem(issue.input) ?? 'invalid series' }),
  z.array(z.object({ ts: readsAsUnit(z.number(), 'Unix seconds', isPlausibleUnixSeconds), page_views: z.number(), sessions: z.number() })),
);

const metricsRow = lenientObject({
  user_id: z.string(),
  page_views: count,
  sessions: count,
  avg_session_seconds: z.number().nonnegative(),
  conversion_rate: z.number().min(0).max(1),
  last_active: optional(isoFromUnixSeconds),
  // Converted to ISO in the mapping below, each instant formatted once.
  series: series.default([]),
});
const metricsResponse = z.object({ data: readableItems(metricsRow), missing: optional(z.array(z.string())) });

const eventsResponse = z.object({
  data: z.array(
    z.object({
      id: z.union([z.string(), z.number()]).transform(String),
      type: z.string(),
      ts: isoFromUnixMs,
      properties: optional(z.record(z.string(), z.unknown())),
    }),
  ),
  next_cursor: optional(z.string()),
});

export class AnalyticsSource extends HttpSource {
  private readonly metricsChunk = new ChunkSize(MAX_IDS_PER_QUERY, (max, status) => this.chunkShrunk('POST /v1/metrics/query', max, status));

  /**
   * Metrics per user over one range, 100 ids a call (fewer once a body that large was refused with 413); ids the vendor lists as
   * missing are absent. A row that cannot be read fails its user alone: the
   * ids neither answered nor listed missing are errors.
   */
  metrics(ids: readonly string[], range: MetricsRange, deadline?: Deadline): Promise<Map<string, MetricsEntity | SourceError>> {
    return lookupInChunks(ids, this.metricsChunk, this.metricsChunkOf.bind(this, range, deadline));
  }

  /** One call of `metrics`: a bound method, not a closure made per call (see paging.ts's ChunkedLookup). */
  private async metricsChunkOf(range: MetricsRange, deadline: Deadline | undefined, batch: string[]): Promise<[string, MetricsEntity | SourceError][]> {
    const res = await this.fetch({
      route: 'POST /v1/metrics/query',
      method: 'POST',
      // A read sent as POST: safe to retry.
      idempotent: true,
      path: '/v1/metrics/query',
      body: { user_ids: batch, from: range.fromSec, to: range.toSec, granularity: range.granularity === 'DAY' ? 'day' : 'hour' },
      schema: metricsResponse,
      deadline,
      batchSize: batch.length,
    });
    const { items, unreadable, problem } = res.body.data;
    const found = new Array<[string, MetricsEntity | SourceError]>(items.length);
    const answered = new Set<string>();
    for (let i = 0; i < items.length; i++) {
      const row = items[i]!;
      answered.add(row.user_id);
      found[i] = [row.user_id, CompactMetrics.fromVendor(row.page_views, row.sessions, row.avg_session_seconds, row.conversion_rate, instantOrNever(row.last_active), row.series)];
    }
    const missing = new Set(res.body.missing ?? []);
    if (unreadable === 0) {
      // Each id asked is a row or listed in `missing` (rows it could not read are drift already).
      if (leavesOut(batch, answered, missing)) this.drift.omittedIds('POST /v1/metrics/query', 'data[].user_id', 'a row or a "missing" entry for each id asked');
      return found;
    }
    const notMissing = batch.filter((id) => !missing.has(id));
    return [...found, ...unreadableIds(notMissing, found, () => this.unreadableEntity('POST /v1/metrics/query', 'a metrics row', `data.${problem}`))];
  }

  /** One page of a user's events, newest first; null when analytics does not know the user. */
  async events(userId: string, limit: number, cursor: string | null, deadline?: Deadline): Promise<EventPage | null> {
    const query = `limit=${limit}${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`;
    const res = await this.fetchOrNull({
      route: 'GET /v1/users/:id/events',
      method: 'GET',
      path: `/v1/users/${pathSegment(userId)}/events?${query}`,
      schema: eventsResponse,
      deadline,
    });
    if (!res) return null;
    return {
      events: res.body.data.map((e) => ({ id: e.id, type: e.type, occurredAt: e.ts, properties: this.servableProperties(e.properties) })),
      // An empty cursor ends the list as null does (Slack's APIs end theirs so): sent back, it names no page.
      nextCursor: res.body.next_cursor || null,
    };
  }

  private servableProperties(properties: Record<string, unknown> | null | undefined): Record<string, unknown> {
    if (!properties) return {};
    if (!nestsDeeperThan(properties, MAX_PROPERTY_DEPTH)) return properties;
    this.drift.tooDeep('GET /v1/users/:id/events', 'data[].properties', MAX_PROPERTY_DEPTH);
    return {};
  }
}
