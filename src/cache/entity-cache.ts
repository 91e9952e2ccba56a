import { SourceError, type SourceErrorCode, type SourceName } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Deadline } from '../resilience/deadline.js';
import { CrossRequestBatcher, type BatchFetch, type Settled } from './cross-request-batcher.js';
import { freshness, makeEntry, storedAhead, type CacheEntry, type StoredForm } from './entry.js';
import type { Invalidation } from './invalidation-bus.js';
import { approximateJsonLength } from './json-size.js';
import { picked } from './picked.js';
import type { MemoryTier } from './memory-tier.js';
import type { CachedEntity, EntityPolicy } from './policy.js';
import type { L2Write, RedisTier } from './redis-tier.js';
import type { Dependencies } from './response-cache.js';

/** Why a value older than its TTL was served; it goes to the response's `extensions.stale`. */
export interface StaleMark {
  source: SourceName;
  /** Seconds since the source produced the value. */
  ageSeconds: number;
  /** REVALIDATING: within stale-while-revalidate, a refresh is under way. SOURCE_ERROR: the source failed (`code`). */
  reason: 'REVALIDATING' | 'SOURCE_ERROR';
  code?: SourceErrorCode;
}

export interface Served<V> {
  value: V;
  stale: StaleMark | null;
}

export type { BatchFetch } from './cross-request-batcher.js';

export interface EntityCacheOptions<K, V> {
  entity: CachedEntity;
  source: SourceName;
  policy: EntityPolicy;
  /** How long "no such entity" (a null value) is kept. */
  negativeTtlMs: number;
  /** The user a key belongs to: what a write invalidates. */
  group(key: K): string;
  /** What tells apart a group's keys (a range, a page); '' when a group has one entry. */
  variant(key: K): string;
  fetch: BatchFetch<K, V>;
  /**
   * The fetch makes one call per key (no bulk endpoint): a request's keys go at once, under its own deadline,
   * instead of waiting for the cross-request batch, which would buy nothing and would let one call wait for a
   * rate-limit token past the deadline of the request it is for.
   */
  perKey?: boolean;
  /** The deadline of a background refresh (a batch for requests runs until the latest of their deadlines). */
  sharedDeadlineMs: number;
  /** How long misses are collected, from all requests, into one batch (0: this turn of the event loop). */
  batchWindowMs: number;
  /** How a value is kept in L2, when not as its plain JSON. */
  stored?: StoredForm<NonNullable<V>>;
}

export interface CacheTiers {
  /** false: a pass-through to the fetch, under the request's deadline. */
  enabled: boolean;
  l1: MemoryTier;
  l2: RedisTier | null;
  /** Tells the other instances (or workers) to drop what an invalidation names. */
  bus: { publish(message: Invalidation): Promise<void> } | null;
  logger: Logger;
  /** Bump when a cached entity's shape changes, so instances of two versions never read each other's entries. */
  format: string;
  /** Counts lookups (for metrics). */
  count?: (entity: CachedEntity, tier: 'l1' | 'l2', result: 'hit' | 'stale' | 'miss', n: number) => void;
}

/** Bound of the refresh-failure memory; past it, it starts over (the marks are only more precise reasons). */
const MAX_REMEMBERED_FAILURES = 10_000;
/**
 * Groups whose last id is remembered (see EntityCache.id); past it, it starts
 * over. At ~190 bytes a group, at most ~390 KB an entity: the last 2,048 users.
 */
const MAX_REMEMBERED_IDS = 2048;

/**
 * The cache of one kind of entity, per key (a user, a user's metrics for a
 * range, an unread count), in front of a batch fetch:
 * L1 → L2 → one upstream call for just the keys neither has.
 *
 * - Single-flight: a key already being fetched, by any request, is joined,
 *   not fetched again. Shared fetches run under their own deadline; each
 *   waiter stops waiting at its own request's deadline.
 * - Stale-while-revalidate: an entry past its TTL but within the window is
 *   served at once, and one background refresh per key runs.
 * - Stale-if-error: when the fetch fails (any SourceError: down, timeout, rate
 *   limit, open breaker, bad response), an entry within the window is served
 *   instead, marked as stale with the failure's code.
 * - Invalidation drops a group's entries in both tiers and on every instance;
 *   a fetch that was under way when it happened does not write its (possibly
 *   older) answer back.
 */
export class EntityCache<K, V> {
  readonly entity: CachedEntity;
  readonly source: SourceName;
  private readonly batcher: CrossRequestBatcher<K, V>;
  private readonly refreshing = new Set<string>();
  /** Why the last background refresh of a key failed, so stale answers say SOURCE_ERROR rather than REVALIDATING. */
  private readonly refreshFailures = new Map<string, SourceErrorCode>();
  /** `${entity}\0`, the start of every id. */
  private readonly idPrefix: string;
  /** The last id made for each group (see id). */
  private readonly lastIds = new Map<string, string>();
  /** L1 hits answered at once (peekFresh) not yet counted: counted once a turn of the event loop, not once a field. */
  private hitsToCount = 0;
  private readonly countHits = (): void => {
    const n = this.hitsToCount;
    this.hitsToCount = 0;
    this.tiers.count?.(this.entity, 'l1', 'hit', n);
  };
  /** Bumped by every invalidation of this entity; a fetch started under another epoch does not store. */
  private epoch = 0;

  constructor(
    private readonly options: EntityCacheOptions<K, V>,
    private readonly tiers: CacheTiers,
  ) {
    this.entity = options.entity;
    this.source = options.source;
    this.idPrefix = `${options.entity}\u0000`;
    this.batcher = new CrossRequestBatcher<K, V>({
      name: options.entity,
      windowMs: options.batchWindowMs,
      sharedDeadlineMs: options.sharedDeadlineMs,
      ...(options.perKey ? { perKey: true } : {}),
      fetch: (keys, deadline, ids) => this.fetchAndStore(keys, ids, deadline),
    });
  }

  /**
   * The key's identity: its L1 key (entity, group and variant), and the key of
   * a request's loader (what it has loaded) and of the batcher. Made once per load and
   * passed along with the key: on a cold list, making it at each step was
   * several strings an entity (bench/RESULTS.md, session 12). A group's last
   * id is given again while its variant is the same: L1 then looks up the
   * very string it keys the entry by, whose hash V8 keeps, instead of a new
   * one to join, hash and compare; on a cached 50-user list that was most of
   * the cost of its 150 L1 reads (bench/RESULTS.md, session 14).
   */
  id(key: K): string {
    const group = this.options.group(key);
    const variant = this.options.variant(key);
    // The group's last id is `${idPrefix}${group}\0${its variant}`: when its tail is this variant, it is this key's.
    const last = this.lastIds.get(group);
    if (last !== undefined && last.length === this.idPrefix.length + group.length + 1 + variant.length && last.endsWith(variant)) return last;
    const id = `${this.idPrefix}${group}\u0000${variant}`;
    if (this.lastIds.size >= MAX_REMEMBERED_IDS) this.lastIds.clear();
    this.lastIds.set(group, id);
    return id;
  }

  /**
   * The fresh L1 entry of the key whose id this is, or undefined. Lets a resolver answer a hit at once,
   * without a promise or a batch; anything else (miss, stale, L2) goes through getMany.
   */
  peekFresh(id: string, dependencies?: Dependencies): Served<V> | undefined {
    if (!this.tiers.enabled) return undefined;
    const now = Date.now();
    const entry = this.tiers.l1.get<V>(id, now);
    if (entry === undefined || now >= entry.freshUntil || storedAhead(entry, now)) return undefined;
    if (this.tiers.count && this.hitsToCount++ === 0) setImmediate(this.countHits);
    dependencies?.add(entry);
    return { value: entry.value as V, stale: null };
  }

  /** `ids`: the keys' ids, when the caller has them already. */
  async getMany(keys: readonly K[], deadline: Deadline, ids: readonly string[] = keys.map((k) => this.id(k))): Promise<Array<Served<V> | Error>> {
    if (!this.tiers.enabled) return this.passThrough(keys, deadline);
    const { l1, l2 } = this.tiers;
    const now = Date.now();
    const out = new Array<Served<V> | Error>(keys.length);
    // Entries past their stale window, served only if the source fails; made on first use (most reads have none).
    const fallback: Fallback<V> = { entries: undefined };
    const refresh: number[] = [];
    let missing: number[] = [];

    for (let i = 0; i < keys.length; i++) {
      const entry = l1.get<V>(ids[i]!, now);
      if (entry && this.classify(entry, ids[i]!, i, now, out, refresh, fallback)) continue;
      missing.push(i);
    }

    const count = this.tiers.count;
    if (count) {
      const stale = refresh.length;
      if (keys.length - missing.length - stale > 0) count(this.entity, 'l1', 'hit', keys.length - missing.length - stale);
      if (stale > 0) count(this.entity, 'l1', 'stale', stale);
      if (missing.length > 0) count(this.entity, 'l1', 'miss', missing.length);
    }

    if (missing.length > 0 && l2?.available) {
      const l2Keys = new Array<string>(missing.length);
      for (let j = 0; j < missing.length; j++) l2Keys[j] = this.l2Key(keys[missing[j]!]!);
      const raw = await l2.getMany(l2Keys);
      if (raw) {
        const before = missing.length;
        const stillMissing: number[] = [];
        const at = Date.now();
        for (let j = 0; j < missing.length; j++) {
          const i = missing[j]!;
          const json = raw[j];
          const entry = decode<V>(json, this.options.stored);
          const known = fallback.entries?.get(i);
          if (entry && freshness(entry, at) !== 'expired' && (!known || entry.storedAt > known.storedAt)) {
            this.storeL1(ids[i]!, keys[i]!, entry, json!);
            if (this.classify(entry, ids[i]!, i, at, out, refresh, fallback)) continue;
          }
          stillMissing.push(i);
        }
        missing = stillMissing;
        if (count) {
          if (before - missing.length > 0) count(this.entity, 'l2', 'hit', before - missing.length);
          if (missing.length > 0) count(this.entity, 'l2', 'miss', missing.length);
        }
      }
    }

    if (missing.length > 0) {
      const results = await this.waitWithin(this.load(picked(keys, missing), picked(ids, missing), deadline), missing.length, deadline);
      for (let j = 0; j < missing.length; j++) {
        const i = missing[j]!;
        const result = results[j]!;
        if (!(result instanceof Error)) {
          out[i] = { value: result, stale: null };
          continue;
        }
        const stale = fallback.entries?.get(i);
        out[i] =
          stale && result instanceof SourceError
            ? { value: stale.value as V, stale: { source: this.source, ageSeconds: ageSeconds(stale), reason: 'SOURCE_ERROR', code: result.code } }
            : result;
      }
    }

    if (refresh.length > 0) void this.revalidate(picked(keys, refresh));
    return out;
  }

  /**
   * Stores values the server got another way (a list page fills the per-user
   * entries). Keys still fresh in L1 are left alone: re-serializing and
   * re-writing them on every list request would buy nothing within their TTL.
   */
  prime(entries: ReadonlyArray<readonly [K, V]>): void {
    if (!this.tiers.enabled) return;
    const now = Date.now();
    const stale = entries.filter(([k]) => {
      const entry = this.tiers.l1.get<V>(this.id(k));
      return !entry || freshness(entry, now) !== 'fresh';
    });
    this.store(
      stale.map(([k]) => k),
      stale.map(([, v]) => v),
    );
  }

  /** A write changed these groups' data upstream: drop them here, in L2 and on every other instance. */
  async invalidate(groups: readonly string[]): Promise<void> {
    this.dropLocal(groups);
    await this.tiers.bus?.publish({ entity: this.entity, groups: [...groups] });
  }

  /** Drops the groups from this instance's L1 only (the message from another instance's write). */
  dropLocal(groups: readonly string[]): void {
    this.epoch++;
    for (const group of groups) this.tiers.l1.deleteGroup(this.l1Group(group));
  }

  /** Whether this instance's L1 holds a usable entry for the key (for diagnostics and tests). */
  cachedLocally(key: K): boolean {
    const entry = this.tiers.l1.get<V>(this.id(key));
    return entry !== undefined && freshness(entry, Date.now()) !== 'expired';
  }

  indexKey(group: string): string | undefined {
    return this.tiers.l2?.indexKey(`${this.entity}:${this.tiers.format}`, group);
  }

  private async passThrough(keys: readonly K[], deadline: Deadline): Promise<Array<Served<V> | Error>> {
    const results = await this.options.fetch(keys, deadline).catch((e: unknown) => keys.map(() => (e instanceof Error ? e : new Error(String(e)))));
    return results.map((r) => (r instanceof Error ? r : { value: r, stale: null }));
  }

  /** Sorts an entry into out/refresh/fallback; false when it cannot answer now (the key is still missing). */
  private classify(entry: CacheEntry<V>, id: string, i: number, now: number, out: Array<Served<V> | Error>, refresh: number[], fallback: Fallback<V>): boolean {
    switch (freshness(entry, now)) {
      case 'fresh':
        out[i] = { value: entry.value as V, stale: null };
        return true;
      case 'revalidate': {
        const code = this.refreshFailures.get(id);
        const age = ageSeconds(entry, now);
        out[i] = {
          value: entry.value as V,
          stale: code ? { source: this.source, ageSeconds: age, reason: 'SOURCE_ERROR', code } : { source: this.source, ageSeconds: age, reason: 'REVALIDATING' },
        };
        refresh.push(i);
        return true;
      }
      case 'ifError':
        (fallback.entries ??= new Map()).set(i, entry);
        return false;
      default:
        return false;
    }
  }

  /** Keys neither tier has: the batcher's (joined when in flight, else batched across requests). */
  private load(keys: K[], ids: string[], deadline: Deadline | null): Promise<Settled<V>[]> {
    return this.batcher.load(keys, ids, deadline);
  }

  /**
   * The batch's upstream call; what it brings is stored, unless an invalidation came while it ran (its answer may be older).
   * A `.then`, not an async function: see SourcePolicy.execute.
   */
  private fetchAndStore(keys: readonly K[], ids: readonly string[], deadline: Deadline): Promise<ReadonlyArray<Settled<V>>> {
    // The epoch as the fetch starts: read before it, as an invalidation during it must stop the store.
    const store = this.storeFetched.bind(this, keys, ids, this.epoch);
    return this.options.fetch(keys, deadline).then(store);
  }

  /** A bound method, not a closure made per batch: see picked. */
  private storeFetched(keys: readonly K[], ids: readonly string[], epoch: number, results: ReadonlyArray<Settled<V>>): ReadonlyArray<Settled<V>> {
    if (epoch !== this.epoch) return results;
    const ok: number[] = [];
    for (let i = 0; i < results.length; i++) if (!(results[i] instanceof Error)) ok.push(i);
    this.store(picked(keys, ok), picked(results, ok) as V[], picked(ids, ok));
    return results;
  }

  /** One background refresh per key, however many requests see it stale; another instance's fresher L2 entry is taken instead. */
  private async revalidate(keys: K[]): Promise<void> {
    const ids = keys.map((k) => this.id(k));
    const todo = keys.flatMap((k, i) => (this.refreshing.has(ids[i]!) || this.batcher.has(ids[i]!) ? [] : [i]));
    if (todo.length === 0) return;
    for (const i of todo) this.refreshing.add(ids[i]!);
    try {
      let stale = todo;
      const l2 = this.tiers.l2;
      if (l2?.available) {
        const raw = await l2.getMany(todo.map((i) => this.l2Key(keys[i]!)));
        if (raw) {
          const now = Date.now();
          stale = todo.filter((i, j) => {
            const entry = decode<V>(raw[j], this.options.stored);
            if (!entry || freshness(entry, now) !== 'fresh') return true;
            this.storeL1(ids[i]!, keys[i]!, entry, raw[j]!);
            return false;
          });
        }
      }
      if (stale.length > 0) {
        const results = await this.load(
          stale.map((i) => keys[i]!),
          stale.map((i) => ids[i]!),
          null,
        );
        results.forEach((result, j) => {
          const id = ids[stale[j]!]!;
          if (result instanceof SourceError) {
            if (this.refreshFailures.size >= MAX_REMEMBERED_FAILURES) this.refreshFailures.clear();
            this.refreshFailures.set(id, result.code);
          } else this.refreshFailures.delete(id);
        });
      }
    } finally {
      for (const i of todo) this.refreshing.delete(ids[i]!);
    }
  }

  private store(keys: K[], values: V[], ids: readonly string[] = keys.map((k) => this.id(k))): void {
    if (keys.length === 0) return;
    const { l2 } = this.tiers;
    const { stored } = this.options;
    const now = Date.now();
    const writes: L2Write[] = [];
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const entry = makeEntry(values[i]!, this.options.policy, this.options.negativeTtlMs, now);
      // Serialized only for L2: L1 alone sizes the entry without building its JSON (storeL1).
      const json = l2 ? JSON.stringify(stored ? encodeEntry(entry, stored) : entry) : undefined;
      if (this.refreshFailures.size > 0) this.refreshFailures.delete(ids[i]!);
      this.storeL1(ids[i]!, key, entry, json);
      if (json !== undefined) writes.push({ key: this.l2Key(key), indexKey: this.indexKey(this.options.group(key))!, json, ttlMs: entry.keepUntil - now });
    }
    l2?.setMany(writes);
  }

  /**
   * An entry into L1, counted as `json`, its L2 form, when there is one and it is the plain JSON; else by the plain
   * JSON's estimate, so that L1 counts the same bytes whether Redis is on or not.
   */
  private storeL1(id: string, key: K, entry: CacheEntry<V>, json: string | undefined): void {
    const bytes = json === undefined || this.options.stored ? approximateJsonLength(entry) : json.length;
    this.tiers.l1.set(id, this.l1Group(this.options.group(key)), entry, bytes);
  }

  /** Waits for the shared fetches, but no longer than this request's own deadline. */
  private waitWithin(all: Promise<Settled<V>[]>, count: number, deadline: Deadline): Promise<Settled<V>[]> {
    if (deadline.expired) return Promise.resolve(this.timeouts(count));
    // The timeouts are made only when the deadline wins: a reaction on `passed` would make them at expiry for every
    // wait that finished long before.
    return Promise.race([all, deadline.passed]).then(this.orTimeouts.bind(this, count));
  }

  private orTimeouts(count: number, settled: Settled<V>[] | void): Settled<V>[] {
    return settled ?? this.timeouts(count);
  }

  private timeouts(count: number): SourceError[] {
    return Array.from({ length: count }, () => this.timeout());
  }

  private timeout(): SourceError {
    return new SourceError({
      code: 'SOURCE_TIMEOUT',
      source: this.source,
      retryable: true,
      local: true,
      detail: 'request deadline passed while waiting for a shared upstream call',
    });
  }

  private l1Group(group: string): string {
    return this.idPrefix + group;
  }

  private l2Key(key: K): string {
    return this.tiers.l2!.key(`${this.entity}:${this.tiers.format}`, this.options.group(key), this.options.variant(key));
  }
}

/** A read's entries that may answer only if the source fails, by their key's index. */
interface Fallback<V> {
  entries: Map<number, CacheEntry<V>> | undefined;
}

function ageSeconds(entry: CacheEntry<unknown>, now = Date.now()): number {
  return Math.max(0, Math.floor((now - entry.storedAt) / 1000));
}

function encodeEntry<V>(entry: CacheEntry<V>, stored: StoredForm<NonNullable<V>>): CacheEntry<unknown> {
  return entry.value === null ? entry : { ...entry, value: stored.encode(entry.value as NonNullable<V>) };
}

function decode<V>(raw: string | null | undefined, stored: StoredForm<NonNullable<V>> | undefined): CacheEntry<V> | null {
  if (!raw) return null;
  try {
    const e = JSON.parse(raw) as CacheEntry<unknown>;
    if (typeof e.storedAt !== 'number' || typeof e.freshUntil !== 'number' || typeof e.staleUntil !== 'number' || typeof e.keepUntil !== 'number' || !('value' in e)) return null;
    if (!stored || e.value === null) return e as CacheEntry<V>;
    const value = stored.decode(e.value) as V | null;
    return value === null ? null : { ...e, value };
  } catch {
    return null;
  }
}
