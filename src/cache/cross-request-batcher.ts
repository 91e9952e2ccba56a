import { Deadline } from '../resilience/deadline.js';
import { picked } from './picked.js';

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
  /** The latest deadline among the loads waiting for it (epoch ms): nobody can use the answer after it. */
  usableUntil: number;
  /** Settles when the fetch has answered, with one result per key, in order; never rejects. */
  done: Promise<ReadonlyArray<Settled<V>>>;
  settle: (results: ReadonlyArray<Settled<V>>) => void;
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
  /** The batch each id in flight belongs to. */
  private readonly inflight = new Map<string, PendingBatch<K, V>>();
  private pending: PendingBatch<K, V> | null = null;

  constructor(private readonly options: CrossRequestBatcherOptions<K, V>) {}

  /** Whether a fetch for this id is under way. */
  has(id: string): boolean {
    return this.inflight.has(id);
  }

  /**
   * The keys' results, in order (`ids[i]` is `keys[i]`'s identity): a key in
   * flight is joined, the rest join the batch being collected. One promise
   * for the call, settled from the batches it waits on (usually one): a
   * promise per key was most of what the batcher allocated on cold lists
   * (bench/RESULTS.md, session 12).
   * `deadline`: the caller's request's, or null for a load outside any request.
   */
  load(keys: readonly K[], ids: readonly string[], deadline: Deadline | null): Promise<Settled<V>[]> {
    /** Key i's answer is the `at[i]`th of the `from[i]`th batch it waits on. */
    const from = new Array<number>(keys.length);
    const at = new Array<number>(keys.length);
    const waitsOn: PendingBatch<K, V>[] = [];
    const usableUntil = deadline ? deadline.expiresAt : performance.now() + this.options.sharedDeadlineMs;
    let own: PendingBatch<K, V> | undefined;
    for (let i = 0; i < keys.length; i++) {
      const id = ids[i]!;
      let batch = this.inflight.get(id);
      if (batch) {
        at[i] = batch.ids.indexOf(id);
      } else {
        batch = this.options.perKey ? (own ??= newBatch()) : this.pendingBatch();
        this.inflight.set(id, batch);
        at[i] = batch.ids.length;
        batch.keys.push(keys[i]!);
        batch.ids.push(id);
        if (usableUntil > batch.usableUntil) batch.usableUntil = usableUntil;
      }
      let w = waitsOn.indexOf(batch);
      if (w < 0) w = waitsOn.push(batch) - 1;
      from[i] = w;
    }
    // An own batch has one waiter, this caller, so far: its fetch runs under the caller's deadline (a later joiner waits
    // within its own), with no deadline, controller and timer of its own for every uncached page a request reads. Should
    // the caller's request end first (its deadline disposed), the fetch still ends by its attempts' own timeouts.
    if (own) void this.run(own, deadline);
    // A bound function, not a closure made per load: see picked.
    if (waitsOn.length === 1) return waitsOn[0]!.done.then((answersAt<V>).bind(null, at));
    return Promise.all(waitsOn.map((b) => b.done)).then((answers) => at.map((j, i) => answers[from[i]!]![j]!));
  }

  private pendingBatch(): PendingBatch<K, V> {
    if (this.pending) return this.pending;
    const batch = newBatch<K, V>();
    this.pending = batch;
    if (this.options.windowMs > 0) setTimeout(this.flushPending, this.options.windowMs);
    else setImmediate(this.flushPending);
    return batch;
  }

  /** Sends the batch being collected. One function for the batcher's life, not a closure per batch: V8 optimizes it once (bench/RESULTS.md, session 19). */
  private readonly flushPending = () => {
    const batch = this.pending;
    this.pending = null;
    if (batch) void this.run(batch);
  };

  /** The batch's fetch, under the latest of its waiters' deadlines: `callers`, when it is the only one, else one of its own. */
  private async run(batch: PendingBatch<K, V>, callers: Deadline | null = null): Promise<void> {
    const { keys, ids } = batch;
    const deadline = callers ?? Deadline.after(Math.max(1, batch.usableUntil - performance.now()));
    let results: ReadonlyArray<Settled<V>>;
    try {
      results = await this.options.fetch(keys, deadline, ids);
    } catch (e) {
      const error = e instanceof Error ? e : new Error(String(e));
      results = keys.map(() => error);
    } finally {
      if (deadline !== callers) deadline.dispose();
    }
    for (const id of ids) this.inflight.delete(id);
    // A value may be null ("no such entity"); only a missing slot breaks the contract.
    if (results.length < keys.length) {
      const missing = new Error(`the batch fetch of ${this.options.name} returned ${results.length} values for ${keys.length} keys`);
      results = keys.map((_, i) => (i < results.length ? results[i]! : missing));
    }
    batch.settle(results);
  }
}

function newBatch<K, V>(): PendingBatch<K, V> {
  let settle!: (results: ReadonlyArray<Settled<V>>) => void;
  const done = new Promise<ReadonlyArray<Settled<V>>>((resolve) => (settle = resolve));
  return { keys: [], ids: [], usableUntil: 0, done, settle };
}

/** A load's answers from its one batch's: key i's is the batch's `at[i]`th. */
function answersAt<V>(at: readonly number[], results: ReadonlyArray<Settled<V>>): Settled<V>[] {
  return picked(results, at);
}
