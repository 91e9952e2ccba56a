import { ApiKeyAuth } from '../auth.js';
import { defineSource } from '../define-source.js';
import { AnalyticsSource } from './analytics-source.js';

/** Analytics (UPSTREAMS.md): API key, Unix timestamps, a bulk metrics query, cursor-paged events, Retry-After in seconds. */
export const analytics = defineSource({
  name: 'analytics',
  description: 'the analytics vendor (metrics, events)',
  env: { url: 'ANALYTICS_URL', credentials: { apiKey: 'ANALYTICS_API_KEY' } },
  tuning: { rateLimitPerSec: 80, rateLimitBurst: 8 },
  entities: {
    'analytics.metrics': {
      env: 'ANALYTICS_METRICS',
      what: "a user's metrics for one range and granularity",
      defaults: { ttlMs: 60_000, staleWhileRevalidateMs: 300_000, staleIfErrorMs: 3_600_000 },
    },
    'analytics.events': { env: 'ANALYTICS_EVENTS', what: "one page of a user's events", defaults: { ttlMs: 30_000, staleWhileRevalidateMs: 60_000, staleIfErrorMs: 900_000 } },
  },
  create: (base, endpoint) => new AnalyticsSource({ ...base, auth: new ApiKeyAuth('x-api-key', endpoint.apiKey) }),
});
