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

/** An entity's name, `<source>.<thing>` ('identity.user'); the sources declare theirs (see sources/registry.ts). */
export type CachedEntity = string;

export interface CacheConfig {
  /** false: every read goes upstream (per-request batching still applies). */
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
  /** Per entity; the sources declare the defaults. */
  entities: Record<CachedEntity, EntityPolicy>;
}

/** The tier settings' defaults, with the entities' windows as their sources declare them. */
export function defaultCacheConfig(entities: Record<CachedEntity, EntityPolicy>): CacheConfig {
  return {
    enabled: true,
    // L1 takes up to 1.5× what its entries are counted for (see entryWeight): 16 MiB is at most
    // ~24 MB of the 160 MB heap `npm run start:prod` sets, whatever the mix of entities (~2,400
    // users' dashboards). At 24 MiB, cold lists peaked at 199–204 MB of RSS, at or over a
    // 200 MB bound; at 16, at 192–196, with the same CPU (bench/RESULTS.md, session 21).
    l1MaxBytes: 16 * 1024 * 1024,
    l2TimeoutMs: 250,
    negativeTtlMs: 10_000,
    // Against vendor latencies of 20 ms and more, 2 ms more on a miss buys one batched call for the
    // misses of all concurrent requests instead of one call each (what a cold start is made of).
    batchWindowMs: 2,
    responsesMaxBytes: 4 * 1024 * 1024,
    entities,
  };
}
