import { describe, expect, it } from 'vitest';
import { LRUCache } from 'lru-cache';
import { lruOfEntries } from '../src/cache/lru-of-entries.js';
import { exposedGc } from './helpers/heap.js';

describe('lruOfEntries: an LRU bounded by entries', () => {
  it('allocates no slot while empty, where lru-cache with `max` allocates them all', () => {
    const empty = LRUCache.unsafeExposeInternals(lruOfEntries<string, string>(100_000, { ttl: 60_000 }));
    expect(empty.keyList.length).toBe(0);
    expect(empty.valList.length).toBe(0);
    expect(LRUCache.unsafeExposeInternals(new LRUCache<string, string>({ max: 100_000 })).keyList.length).toBe(100_000);
  });

  it('weighs next to nothing in the heap while empty (five caches of 100,000 with a TTL)', () => {
    const gc = exposedGc();
    const heapGrowth = (make: () => unknown): number => {
      gc();
      const before = process.memoryUsage().heapUsed;
      const kept = Array.from({ length: 5 }, make);
      gc();
      const grew = process.memoryUsage().heapUsed - before;
      expect(kept).toHaveLength(5);
      return grew;
    };
    expect(heapGrowth(() => lruOfEntries<string, true>(100_000, { ttl: 60_000 }))).toBeLessThan(200_000);
    expect(heapGrowth(() => new LRUCache<string, true>({ max: 100_000, ttl: 60_000 }))).toBeGreaterThan(10_000_000);
  });

  it('keeps the most recently used entries up to its bound', () => {
    const cache = lruOfEntries<string, number>(3);
    for (const [i, key] of ['a', 'b', 'c'].entries()) cache.set(key, i);
    expect(cache.get('a')).toBe(0); // now the most recent
    cache.set('d', 3);
    expect(cache.size).toBe(3);
    expect([...cache.keys()].sort()).toEqual(['a', 'c', 'd']);
    for (let i = 0; i < 1000; i++) cache.set(`k${i}`, i);
    expect(cache.size).toBe(3);
    expect([...cache.keys()].sort()).toEqual(['k997', 'k998', 'k999']);
  });

  it('passes lru-cache options on: a TTL ends an entry, per cache or per entry', () => {
    let now = 1_000;
    const perf = { now: () => now };
    const cache = lruOfEntries<string, string>(10, { ttl: 50, ttlResolution: 0, perf });
    cache.set('short', 'x', { ttl: 10 });
    cache.set('default', 'y');
    now += 20;
    expect(cache.get('short')).toBeUndefined();
    expect(cache.get('default')).toBe('y');
    now += 40;
    expect(cache.get('default')).toBeUndefined();
  });
});
