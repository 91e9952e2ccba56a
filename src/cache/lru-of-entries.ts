import { LRUCache } from 'lru-cache';

/** lru-cache's options, less the bounds that lruOfEntries sets. */
export type LruOfEntriesOptions<K extends NonNullable<unknown>, V extends NonNullable<unknown>> = Omit<LRUCache.Options<K, V, unknown>, 'max' | 'maxSize' | 'sizeCalculation'>;

/**
 * An LRU bounded by its number of entries that takes memory only as it fills.
 * lru-cache's `max` allocates its arrays for all `max` entries at once (two
 * more with a TTL): five caches of 100,000 entries took 15 MB of heap and
 * 11 MB of buffers while still empty, in every process (bench/RESULTS.md,
 * session 11). The same bound counted through `maxSize`, one unit an entry,
 * grows its arrays with use and evicts the same way.
 */
export function lruOfEntries<K extends NonNullable<unknown>, V extends NonNullable<unknown>>(entries: number, options: LruOfEntriesOptions<K, V> = {}): LRUCache<K, V> {
  return new LRUCache<K, V>({ ...options, maxSize: entries, sizeCalculation: () => 1 });
}
