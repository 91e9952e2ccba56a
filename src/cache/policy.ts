import type { SourceName } from '../errors.js';

/**
 * How long one kind of entity stays usable, after RFC 5861's model:
 * fresh for `ttlMs`; then, for `staleWhileRevalidateMs` more, served at once
 * while one background refresh runs; and, until `staleIfErrorMs` after it
 * stopped being fresh, served when the source fails instead of an error.
 */
export interface EntityPolicy {
  ttlMs: number;
  staleWhileRevalidateMs: number;
  staleIfErrorMs: number;
}

export const CACHED_ENTITIES = ['identity.user', 'analytics.metrics', 'analytics.events', 'notifications.unreadCount', 'notifications.page'] as const;
export type CachedEntity = (typeof CACHED_ENTITIES)[number];

/** Env prefix (`CACHE_<PREFIX>_TTL_MS` …), owning source and defaults per entity. */
export const ENTITY_SETTINGS: Record<CachedEntity, { env: string; source: SourceName; what: string; defaults: EntityPolicy }> = {
  'identity.user': {
    env: 'IDENTITY_USER',
    source: 'identity',
    what: 'a user profile',
    defaults: { ttlMs: 60_000, staleWhileRevalidateMs: 300_000, staleIfErrorMs: 3_600_000 },
  },
  'analytics.metrics': {
    env: 'ANALYTICS_METRICS',
    source: 'analytics',
    what: "a user's metrics for one range and granularity",
    defaults: { ttlMs: 60_000, staleWhileRevalidateMs: 300_000, staleIfErrorMs: 3_600_000 },
  },
  'analytics.events': {
    env: 'ANALYTICS_EVENTS',
    source: 'analytics',
    what: "one page of a user's events",
    defaults: { ttlMs: 30_000, staleWhileRevalidateMs: 60_000, staleIfErrorMs: 900_000 },
  },
  'notifications.unreadCount': {
    env: 'NOTIFICATIONS_UNREAD_COUNT',
    source: 'notifications',
    what: "a user's unread notification count",
    defaults: { ttlMs: 10_000, staleWhileRevalidateMs: 30_000, staleIfErrorMs: 600_000 },
  },
  'notifications.page': {
    env: 'NOTIFICATIONS_PAGE',
    source: 'notifications',
    what: "one page of a user's notifications",
    defaults: { ttlMs: 10_000, staleWhileRevalidateMs: 30_000, staleIfErrorMs: 600_000 },
  },
};

export interface CacheConfig {
  /** false: every read goes upstream (DataLoader batching still applies). */
  enabled: boolean;
  /** Bound of the in-process tier: each entry's JSON plus its bookkeeping (see entryWeight), about its weight in the heap. */
  l1MaxBytes: number;
  /** A Redis read slower than this counts as a miss (and as a failure for the L2 breaker). */
  l2TimeoutMs: number;
  /** How long "no such entity" is remembered; never served stale. */
  negativeTtlMs: number;
  /** How long misses are collected, from all requests, before they go upstream as one batch per source. */
  batchWindowMs: number;
  /** Bound of the response cache (whole entity-query responses, see ResponseCache), in bytes of JSON; 0: off. */
  responsesMaxBytes: number;
  entities: Record<CachedEntity, EntityPolicy>;
}

export function defaultCacheConfig(): CacheConfig {
  return {
    enabled: true,
    // L1 takes up to 1.5× what its entries are counted for (see entryWeight): 24 MiB is at most
    // ~36 MB of the 160 MB heap `npm run start:prod` sets, whatever the mix of entities.
    l1MaxBytes: 24 * 1024 * 1024,
    l2TimeoutMs: 250,
    negativeTtlMs: 10_000,
    // Against vendor latencies of 20 ms and more, 2 ms more on a miss buys one batched call for the
    // misses of all concurrent requests instead of one call each (what a cold start is made of).
    batchWindowMs: 2,
    responsesMaxBytes: 4 * 1024 * 1024,
    entities: Object.fromEntries(CACHED_ENTITIES.map((e) => [e, { ...ENTITY_SETTINGS[e].defaults }])) as Record<CachedEntity, EntityPolicy>,
  };
}
