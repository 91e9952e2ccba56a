import { EntityCache, type BatchFetch } from '../../src/cache/entity-cache.js';
import type { MemoryTier } from '../../src/cache/memory-tier.js';
import type { CachedEntity } from '../../src/cache/policy.js';
import type { SourceName } from '../../src/errors.js';
import { createLogger } from '../../src/logger.js';

/** What a test's entity cache is: its names, its key's group and variant, and the fetch the test writes. */
export interface TestEntity<K, V> {
  entity: CachedEntity;
  source: SourceName;
  group: (key: K) => string;
  variant: (key: K) => string;
  fetch: BatchFetch<K, V>;
}

/**
 * An entity cache as the server makes one, over a fetch the test writes: L1
 * only (no L2, no bus), a minute's TTL, a batch per turn of the event loop.
 * `enabled: false` makes it a pass-through.
 */
export function testEntityCache<K, V>(what: TestEntity<K, V>, l1: MemoryTier, { enabled = true } = {}): EntityCache<K, V> {
  return new EntityCache<K, V>(
    {
      entity: what.entity,
      source: what.source,
      policy: { ttlMs: 60_000, staleWhileRevalidateMs: 0, staleIfErrorMs: 0 },
      negativeTtlMs: 60_000,
      group: what.group,
      variant: what.variant,
      fetch: what.fetch,
      sharedDeadlineMs: 5_000,
      batchWindowMs: 0,
    },
    { enabled, l1, l2: null, bus: null, logger: createLogger({ level: 'silent' }), format: 'test' },
  );
}

/** An `identity.user` cache keyed by user id (see testEntityCache). */
export function userCache<V>(fetch: BatchFetch<string, V>, l1: MemoryTier, { enabled = true } = {}): EntityCache<string, V> {
  return testEntityCache({ entity: 'identity.user', source: 'identity', group: (id) => id, variant: () => '', fetch }, l1, { enabled });
}
