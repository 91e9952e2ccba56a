import { z } from 'zod';
import type { Dataset } from './dataset.js';
import { json, type Reply, type UpstreamApi, type UpstreamRequest } from './simulated-server.js';

/**
 * Analytics: X-API-Key, Unix seconds and milliseconds, a bulk metrics query
 * that lists unknown ids in `missing`, cursor-paged events, 429 with
 * Retry-After in seconds.
 */
const MAX_IDS = 100;
const MAX_EVENTS = 200;
const MAX_BUCKETS = 2000;

const queryBody = z.object({
  user_ids: z.array(z.string()).min(1).max(MAX_IDS),
  from: z.number().int().nonnegative(),
  to: z.number().int().nonnegative(),
  granularity: z.enum(['day', 'hour']),
});

const invalid = (message: string) => json(400, { error: 'invalid_request', message });

function encodeCursor(offset: number): string {
  return Buffer.from(`evt:${offset}`).toString('base64url');
}

function decodeCursor(cursor: string): number | null {
  const match = /^evt:(\d+)$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  return match ? Number(match[1]) : null;
}

export function analyticsApi(data: Dataset, apiKey: string): UpstreamApi {
  const metrics = (req: UpstreamRequest): Reply => {
    const parsed = queryBody.safeParse(req.body);
    if (!parsed.success) return invalid(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
    const { user_ids: ids, from, to, granularity } = parsed.data;
    if (from >= to) return invalid('from must be before to');
    const size = granularity === 'day' ? 86_400 : 3_600;
    const first = Math.floor(from / size) * size;
    if ((to - first) / size > MAX_BUCKETS) return invalid(`range too long: at most ${MAX_BUCKETS} ${granularity} buckets`);
    req.recordBatch(ids.length);

    const known: number[] = [];
    const missing: string[] = [];
    for (const id of new Set(ids)) {
      const i = data.indexOf(id);
      if (i !== undefined && data.hasAnalytics(i)) known.push(i);
      else missing.push(id);
    }
    known.sort((a, b) => a - b);
    const rows = known.map((i) => {
      const series = [];
      let pageViews = 0;
      let sessions = 0;
      for (let ts = first; ts < to; ts += size) {
        const b = data.bucket(i, ts, size / 3600);
        pageViews += b.pageViews;
        sessions += b.sessions;
        series.push({ ts, page_views: b.pageViews, sessions: b.sessions });
      }
      return {
        user_id: data.users[i]!.user_id,
        page_views: pageViews,
        sessions,
        avg_session_seconds: data.avgSessionSeconds(i),
        conversion_rate: data.conversionRate(i),
        last_active: data.lastActiveSec(i),
        series,
      };
    });
    return json(200, { data: rows, missing });
  };

  const events = (req: UpstreamRequest): Reply => {
    const i = data.indexOf(req.params[0]!);
    if (i === undefined) return json(404, { error: 'user_not_found' });
    const limit = Number(req.query.get('limit') ?? '50');
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_EVENTS) return invalid(`limit must be 1..${MAX_EVENTS}`);
    const cursor = req.query.get('cursor');
    const offset = cursor === null ? 0 : decodeCursor(cursor);
    if (offset === null) return invalid('invalid cursor');
    const all = data.eventsOf(i);
    const page = all.slice(offset, offset + limit);
    const next = offset + limit < all.length ? encodeCursor(offset + limit) : null;
    return json(200, { data: page, next_cursor: next });
  };

  return {
    name: 'analytics',
    routes: [
      { method: 'POST', name: 'POST /v1/metrics/query', pattern: /^\/v1\/metrics\/query$/, handler: metrics },
      { method: 'GET', name: 'GET /v1/users/:id/events', pattern: /^\/v1\/users\/([^/]+)\/events$/, handler: events },
    ],
    authenticate: (req) => (req.headers['x-api-key'] === apiKey ? null : json(401, { error: 'invalid_api_key' })),
    rateLimited: (window) => json(429, { error: 'rate_limited' }, { 'retry-after': String(Math.max(1, window.resetSec - window.nowSec)) }),
  };
}
