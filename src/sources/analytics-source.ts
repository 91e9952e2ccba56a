import { z } from 'zod';
import type { Deadline } from '../resilience/deadline.js';
import { HttpSource, pathSegment } from './http-source.js';
import type { EventPage, MetricsEntity, MetricsRange } from './models.js';
import { count, isoFromUnixMs, isoFromUnixSeconds, isoOfUnixSeconds, unixSeconds } from './normalize.js';
import { lookupInChunks } from './paging.js';

/** Analytics: API key, Unix seconds and milliseconds, a bulk metrics query, cursor-paged events. */
const MAX_IDS_PER_QUERY = 100;
export const MAX_EVENTS_PER_CALL = 200;

const metricsRow = z.object({
  user_id: z.string(),
  page_views: count,
  sessions: count,
  avg_session_seconds: z.number().nonnegative(),
  conversion_rate: z.number().min(0).max(1),
  last_active: isoFromUnixSeconds.nullish(),
  // Thousands of points in a 100-user answer: checked without per-point transforms, converted in the mapping below.
  series: z.array(z.object({ ts: unixSeconds, page_views: count, sessions: count })).default([]),
});
const metricsResponse = z.object({ data: z.array(metricsRow), missing: z.array(z.string()).default([]) });

const eventsResponse = z.object({
  data: z.array(
    z.object({
      id: z.union([z.string(), z.number()]).transform(String),
      type: z.string(),
      ts: isoFromUnixMs,
      properties: z.record(z.string(), z.unknown()).default({}),
    }),
  ),
  next_cursor: z.string().nullish(),
});

export class AnalyticsSource extends HttpSource {
  /** Metrics per user over one range, 100 ids a call; ids the vendor lists as missing are absent. */
  metrics(ids: readonly string[], range: MetricsRange, deadline?: Deadline): Promise<Map<string, MetricsEntity>> {
    return lookupInChunks(ids, MAX_IDS_PER_QUERY, async (batch) => {
      const res = await this.fetch({
        route: 'POST /v1/metrics/query',
        method: 'POST',
        // A read sent as POST: safe to retry.
        idempotent: true,
        path: '/v1/metrics/query',
        body: { user_ids: batch, from: range.fromSec, to: range.toSec, granularity: range.granularity === 'DAY' ? 'day' : 'hour' },
        schema: metricsResponse,
        deadline,
      });
      return res.body.data.map(
        (row): [string, MetricsEntity] => [
          row.user_id,
          {
            pageViews: row.page_views,
            sessions: row.sessions,
            avgSessionSeconds: row.avg_session_seconds,
            conversionRate: row.conversion_rate,
            lastActiveAt: row.last_active ?? null,
            series: row.series.map((p) => ({ at: isoOfUnixSeconds(p.ts), pageViews: p.page_views, sessions: p.sessions })),
          },
        ],
      );
    });
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
    return { events: res.body.data.map((e) => ({ id: e.id, type: e.type, occurredAt: e.ts, properties: e.properties })), nextCursor: res.body.next_cursor ?? null };
  }
}
