import { Deadline } from '../resilience/deadline.js';

/** A value, or the error that fails its key alone. */
export type Settled<V> = V | Error;

/**
 * The batch function's contract, as DataLoader states it: given keys, resolve
 * to an array of the same length, in the same order — one value or Error per
 * key. An Error fails its key alone; a rejection fails the whole batch; an
 * answer shorter than the keys fails the keys it left out (a bug in the fetch,
 * said so in the error). Vendors do not keep this order themselves: map their
 * answers back to the keys by id, never by position (see sources/paging.ts).
 */
export type BatchFetch<K, V> = (keys: readonly K[], deadline: Deadline) => Promise<ReadonlyArray<Settled<V>>>;

export interface CrossRequestBatcherOptions<K, V> {
  /** A BatchFetch that is also given the keys' ids (`ids[i]` is `keys[i]`'s). */
  fetch: (keys: readonly K[], deadline: Deadline, ids: readonly string[]) => ReturnType<BatchFetch<K, V>>;
  /** How long loads from every request are collected before one fetch; 0: the rest of this turn of the event loop. */
  windowMs: number;
  /** The deadline of a load made outside any request (a background refresh). */
  sharedDeadlineMs: number;
  /** Every call goes at once with only its own keys (lists with no bulk endpoint: each key fails alone). */
  perKey?: boolean;
  /** Names the entity in the error of a fetch that broke the contract. */
  name: string;
}

interface PendingBatch<K, V> {
  keys: K[];
  ids: string[];
  resolvers: ((value: Settled<V>) => void)[];
  /** The latest deadline among the loads waiting for it (epoch ms): nobody can use the answer after it. */
  usableUntil: number;
}

/**
 * DataLoader's scheduling, across requests: the loads of every request in
 * flight within `windowMs` go upstream as one fetch (the sources split it at
 * the vendor's maximum), and a key already being fetched is joined, not
 * fetched again (single-flight). DataLoader itself batches per request and
 * per tick; a cold start, where every request asks for new keys, needs the
 * batch to span requests, and each batch to run under the latest of its
 * waiters' deadlines rather than the first's. It keeps no values: the cache
 * tiers in front of it do.
 */
export class CrossRequestBatcher<K, V> {
  private readonly inflight = new Map<string, Promise<Settled<V>>>();
  private pending: PendingBatch<K, V> | null = null;

  constructor(private readonly options: CrossRequestBatcherOptions<K, V>) {}

  /** Whether a fetch for this id is under way. */
  has(id: string): boolean {
    return this.inflight.has(id);
  }

  /**
   * One promise per key (`ids[i]` is `keys[i]`'s identity); a key in flight is
   * joined, the rest join the batch being collected. `deadline`: the caller's
   * request's, or null for a load outside any request.
   */
  load(keys: readonly K[], ids: readonly string[], deadline: Deadline | null): Promise<Settled<V>>[] {
    const promises = new Array<Promise<Settled<V>>>(keys.length);
    const usableUntil = deadline ? deadline.expiresAt : Date.now() + this.options.sharedDeadlineMs;
    let own: PendingBatch<K, V> | undefined;
    for (let i = 0; i < keys.length; i++) {
      const id = ids[i]!;
      const joined = this.inflight.get(id);
      if (joined) {
        promises[i] = joined;
        continue;
      }
      const batch = this.options.perKey ? (own ??= { keys: [], ids: [], resolvers: [], usableUntil: 0 }) : this.pendingBatch();
      const promise = new Promise<Settled<V>>((resolve) => batch.resolvers.push(resolve));
      this.inflight.set(id, promise);
      promises[i] = promise;
      batch.keys.push(keys[i]!);
      batch.ids.push(id);
      if (usableUntil > batch.usableUntil) batch.usableUntil = usableUntil;
    }
    if (own) void this.run(own);
    return promises;
  }

  private pendingBatch(): PendingBatch<K, V> {
    if (this.pending) return this.pending;
    const batch: PendingBatch<K, V> = { keys: [], ids: [], resolvers: [], usableUntil: 0 };
    this.pending = batch;
    const flush = () => {
      this.pending = null;
      void this.run(batch);
    };
    if (this.options.windowMs > 0) setTimeout(flush, this.options.windowMs);
    else setImmediate(flush);
    return batch;
  }

  /** The batch's fetch, under a deadline of its own: the latest of its waiters'. */
  private async run(batch: PendingBatch<K, V>): Promise<void> {
    const { keys, ids, resolvers } = batch;
    const deadline = Deadline.after(Math.max(1, batch.usableUntil - Date.now()));
    let results: ReadonlyArray<Settled<V>>;
    try {
      results = await this.options.fetch(keys, deadline, ids);
    } catch (e) {
      const error = e instanceof Error ? e : new Error(String(e));
      results = keys.map(() => error);
    } finally {
      deadline.dispose();
    }
    ids.forEach((id, i) => {
      this.inflight.delete(id);
      // A value may be null ("no such entity"); only a missing slot breaks the contract.
      resolvers[i]!(i < results.length ? results[i]! : new Error(`the batch fetch of ${this.options.name} returned ${results.length} values for ${keys.length} keys`));
    });
  }
}
