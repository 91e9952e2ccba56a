import { EntityCache, type BatchFetch } from '../../src/cache/entity-cache.js';
import type { MemoryTier } from '../../src/cache/memory-tier.js';
import { createLogger } from '../../src/logger.js';

/**
 * An `identity.user` cache keyed by user id, as the server makes one, over a
 * fetch the test writes: L1 only (no L2, no bus), a minute's TTL, a batch per
 * turn of the event loop. `enabled: false` makes it a pass-through.
 */
export function userCache<V>(fetch: BatchFetch<string, V>, l1: MemoryTier, { enabled = true } = {}): EntityCache<string, V> {
  return new EntityCache<string, V>(
    {
      entity: 'identity.user',
      source: 'identity',
      policy: { ttlMs: 60_000, staleWhileRevalidateMs: 0, staleIfErrorMs: 0 },
      negativeTtlMs: 60_000,
      group: (id) => id,
      variant: () => '',
      fetch,
      sharedDeadlineMs: 5_000,
      batchWindowMs: 0,
    },
    { enabled, l1, l2: null, bus: null, logger: createLogger({ level: 'silent' }), format: 'test' },
  );
}
