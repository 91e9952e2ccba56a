import { LRUCache } from 'lru-cache';
import { Doorkeeper } from './doorkeeper.js';
import type { CacheEntry } from './entry.js';

/**
 * What an entry weighs in the heap besides its JSON: the entry's record, its
 * slots in lru-cache, the group index, and the key and group strings. Measured
 * with realistic keys, a cached count or a "no such entity" (~100 bytes of JSON)
 * took ~700–850 bytes of heap. Counted by their JSON alone, a tier of them took
 * 7–8× its bound, and unknown ids from any client fill it: the 160 MB heap of
 * `start:prod` ran out after ~150,000 of them. With this added, a tier of
 * counts, users, notification pages or metrics takes 0.9–1.2× its bound, and
 * up to 1.5× while small entries churn through it (bench/RESULTS.md, session 6).
 * Kept since a group's only key went unindexed (isOnlyKeyOf), which made users
 * and counts ~570 bytes lighter: for them the bound is now on the safe side.
 */
export const ENTRY_OVERHEAD_BYTES = 640;

/** The bytes an entry is counted for: its JSON, its bookkeeping, and its key and group strings (about the same length). */
export function entryWeight(key: string, jsonBytes: number): number {
  return jsonBytes + ENTRY_OVERHEAD_BYTES + 2 * key.length;
}

/**
 * Whether the key is `${group}\0`: the one key of a group with no variants (a
 * user's profile, their unread count). deleteGroup finds such a key from the
 * group alone, so it is not indexed: the index took ~570 bytes of heap an
 * entry and over a third of each set's time (bench/RESULTS.md, session 12).
 */
function isOnlyKeyOf(key: string, group: string): boolean {
  return key.length === group.length + 1 && key.charCodeAt(group.length) === 0 && key.startsWith(group);
}

/** A reused lru-cache options object, its `status` cleared for the next call (see MemoryTier's lruRead). */
function quiet<T extends { status?: unknown }>(options: T): T {
  options.status = undefined;
  return options;
}

/** The share of L1 kept for keys offered once while the rest is full (see MemoryTier). */
export const WINDOW_SHARE = 1 / 16;

/** A key offered once while L1 was full: kept here, with its weight, until read again or pushed out. */
interface WindowSlot {
  entry: CacheEntry<unknown>;
  weight: number;
}

/**
 * L1: entries in this process, bounded by what they weigh (see entryWeight). Values are
 * shared by every request that reads them and must never be mutated. Keys of
 * one group (one user's notification pages, say) are indexed so a write can
 * drop them all without scanning; a group's only key, `${group}\0`, is found
 * without an index (see isOnlyKeyOf).
 *
 * Laid out after W-TinyLFU: a main part, which, once full, takes a new key
 * only from its second offer (a flood of keys asked once must not evict what
 * is read, see admits), and a small window (WINDOW_SHARE of the bound) where a
 * key offered once waits meanwhile. A read of it there moves it into the main
 * part, so a user's second request within seconds of the first does not wait
 * on the vendors again; keys never read again are pushed out of the window
 * young, without touching the main part.
 */
export class MemoryTier {
  private readonly lru: LRUCache<string, CacheEntry<unknown>>;
  private readonly window: LRUCache<string, WindowSlot>;
  private readonly mainBytes: number;
  private readonly windowBytes: number;
  /**
   * lru-cache makes an options object for each call given none, and writes its
   * `status` into it: one object per kind of call, reused, spares that (a cold
   * list makes ~1,000 such calls, bench/RESULTS.md, session 13). `status` is
   * cleared before each call (see quiet), so a diagnostics subscriber still
   * gets a status of its own every time.
   */
  private readonly lruRead: LRUCache.GetOptions<string, CacheEntry<unknown>, unknown> = { status: undefined };
  private readonly lruWrite: LRUCache.SetOptions<string, CacheEntry<unknown>, unknown> = { size: 0, status: undefined };
  private readonly windowRead: LRUCache.GetOptions<string, WindowSlot, unknown> = { status: undefined };
  private readonly lruLookup: LRUCache.HasOptions<string, CacheEntry<unknown>, unknown> = { status: undefined };
  private readonly groups = new Map<string, Set<string>>();
  private readonly groupOfKey = new Map<string, string>();
  /** Keys offered while the tier was full (see set). */
  private readonly doorkeeper = new Doorkeeper();
  /** Set while a window entry moves into the main part: leaving the window then neither retires nor unindexes it. */
  private promoting = false;

  constructor(maxBytes: number) {
    const windowBytes = Math.floor(maxBytes * WINDOW_SHARE);
    this.mainBytes = maxBytes - windowBytes;
    this.windowBytes = Math.max(1, windowBytes);
    // No lru-cache TTL: every entry carries its own times (keepUntil ends it), and lru-cache's
    // per-read TTL bookkeeping showed in profiles of cached queries. Expired entries are dropped when read or evicted.
    this.lru = new LRUCache<string, CacheEntry<unknown>>({
      maxSize: this.mainBytes,
      dispose: (value, key, reason) => {
        value.retired = true;
        if (reason !== 'set') this.unindex(key);
      },
    });
    this.window = new LRUCache<string, WindowSlot>({
      maxSize: this.windowBytes,
      sizeCalculation: (slot) => slot.weight,
      dispose: (slot, key, reason) => {
        if (this.promoting) return;
        slot.entry.retired = true;
        if (reason !== 'set') this.unindex(key);
      },
    });
  }

  get<V>(key: string, now = Date.now()): CacheEntry<V> | undefined {
    const entry = (this.lru.get(key, quiet(this.lruRead)) as CacheEntry<V> | undefined) ?? (this.window.size === 0 ? undefined : this.fromWindow<V>(key));
    if (entry === undefined || now < entry.keepUntil) return entry;
    this.lru.delete(key); // a window entry read here has just moved into the main part
    return undefined;
  }

  /** A key read in the window has been asked twice: it moves into the main part, as it is (not retired). */
  private fromWindow<V>(key: string): CacheEntry<V> | undefined {
    const slot = this.window.get(key, quiet(this.windowRead));
    if (slot === undefined) return undefined;
    this.promoting = true;
    try {
      this.window.delete(key);
    } finally {
      this.promoting = false;
    }
    this.write(key, slot.entry, slot.weight);
    return slot.entry as CacheEntry<V>;
  }

  /** `jsonBytes`: the entry's JSON length (as made for L2, or as estimated when there is no L2). */
  set(key: string, group: string, entry: CacheEntry<unknown>, jsonBytes: number): void {
    if (entry.keepUntil <= Date.now()) return;
    const weight = entryWeight(key, jsonBytes);
    if (this.admits(key, weight)) {
      this.window.delete(key);
      this.write(key, entry, weight);
      if (weight > this.mainBytes) return; // larger than the whole tier: lru-cache kept nothing
    } else {
      this.window.set(key, { entry, weight });
      if (weight > this.windowBytes) return; // larger than the window
    }
    if (isOnlyKeyOf(key, group) || this.groupOfKey.get(key) === group) return;
    this.groupOfKey.set(key, group);
    let keys = this.groups.get(group);
    if (!keys) this.groups.set(group, (keys = new Set()));
    keys.add(key);
  }

  private write(key: string, entry: CacheEntry<unknown>, weight: number): void {
    const options = quiet(this.lruWrite);
    options.size = weight;
    this.lru.set(key, entry, options);
  }

  /**
   * Whether a new entry may take room in the main part. While there is room,
   * every entry is kept from its first fetch; a key the tier holds is always
   * replaced. Once full, a new key is kept only from its second offer within
   * the doorkeeper's memory (until then it waits in the window): otherwise a
   * flood of keys asked once (a cold list, unknown ids) evicts one entry for
   * each it stores, every entry stored dies unread in the old generation, and
   * on cold lists that churn cost ~30 % of the CPU (bench/RESULTS.md) while
   * evicting the entries that were being read.
   */
  private admits(key: string, weight: number): boolean {
    if (this.lru.calculatedSize + weight <= this.mainBytes || this.lru.has(key, quiet(this.lruLookup))) return true;
    return this.doorkeeper.seen(key);
  }

  /** Whether the entry is still the one L1 holds for its key (not replaced, dropped or evicted since). */
  holds(entry: CacheEntry<unknown>): boolean {
    return entry.retired !== true;
  }

  /** Drops every entry of the group; returns how many there were. */
  deleteGroup(group: string): number {
    const only = `${group}\u0000`;
    let n = this.lru.delete(only) || this.window.delete(only) ? 1 : 0;
    const keys = this.groups.get(group);
    if (!keys) return n;
    n += keys.size;
    for (const key of [...keys]) {
      this.lru.delete(key);
      this.window.delete(key);
    }
    this.groups.delete(group);
    return n;
  }

  clear(): void {
    // Both dispose (retire) every entry.
    this.lru.clear();
    this.window.clear();
    this.groups.clear();
    this.groupOfKey.clear();
  }

  get size(): number {
    return this.lru.size + this.window.size;
  }

  get bytes(): number {
    return this.lru.calculatedSize + this.window.calculatedSize;
  }

  private unindex(key: string): void {
    const group = this.groupOfKey.get(key);
    if (group === undefined) return;
    this.groupOfKey.delete(key);
    const keys = this.groups.get(group);
    keys?.delete(key);
    if (keys?.size === 0) this.groups.delete(group);
  }
}
