import type { EntityPolicy } from './policy.js';

/**
 * One cached entity with the times that decide how it may be used. `value`
 * null means "the source says there is no such entity" (a negative entry).
 * Stored as is in L1 and as JSON in L2, so every instance reads the same times.
 */
export interface CacheEntry<V> {
  value: V | null;
  /** When the source produced it: the age reported with stale data. */
  storedAt: number;
  freshUntil: number;
  /** Until then, served at once while a refresh runs. */
  staleUntil: number;
  /** Until then, served when the source fails; then dropped. */
  keepUntil: number;
  /**
   * Set by L1 when it stops holding the entry (replaced, dropped or evicted):
   * a response built from it no longer stands (see MemoryTier.holds). A flag on
   * the entry rather than a WeakSet of retired entries: a cold list evicts ~150
   * entries a query, and the WeakSet's upkeep cost ~8 % of its CPU
   * (bench/RESULTS.md, session 14). L2's JSON of an entry is made before L1
   * takes it, so the flag is never in it.
   */
  retired?: true;
}

/**
 * How an entity's value is kept in L2 when its plain JSON is wasteful (metrics: columns of numbers, not objects with
 * ISO strings). `decode` gets what `encode` made, as parsed from JSON, or whatever else Redis holds: null reads as a miss.
 */
export interface StoredForm<V> {
  encode(value: V): unknown;
  decode(stored: unknown): V | null;
}

export type Freshness = 'fresh' | 'revalidate' | 'ifError' | 'expired';

export function makeEntry<V>(value: V | null, policy: EntityPolicy, negativeTtlMs: number, now = Date.now()): CacheEntry<V> {
  if (value === null) {
    const until = now + negativeTtlMs;
    return { value, storedAt: now, freshUntil: until, staleUntil: until, keepUntil: until };
  }
  const freshUntil = now + policy.ttlMs;
  return {
    value,
    storedAt: now,
    freshUntil,
    staleUntil: freshUntil + policy.staleWhileRevalidateMs,
    keepUntil: freshUntil + Math.max(policy.staleWhileRevalidateMs, policy.staleIfErrorMs),
  };
}

/**
 * How far ahead of this instance's clock an entry's `storedAt` may be and still be believed: instances' clocks
 * differ by milliseconds under NTP. Further ahead, it was stored before this clock went back (NTP stepping a clock
 * that ran ahead, a VM restored), and its times would keep it fresh for as long as the step.
 */
export const STORED_AHEAD_ALLOWANCE_MS = 5_000;

/** Whether the entry was stored before the clock went back (see STORED_AHEAD_ALLOWANCE_MS): its times say nothing. */
export function storedAhead(entry: CacheEntry<unknown>, now: number): boolean {
  return entry.storedAt - now > STORED_AHEAD_ALLOWANCE_MS;
}

export function freshness(entry: CacheEntry<unknown>, now: number): Freshness {
  // Fetched again, and kept for a vendor that fails meanwhile (how old it is, no one can say).
  if (storedAhead(entry, now)) return 'ifError';
  if (now < entry.freshUntil) return 'fresh';
  if (now < entry.staleUntil) return 'revalidate';
  if (now < entry.keepUntil) return 'ifError';
  return 'expired';
}
