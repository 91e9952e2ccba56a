import type { YogaInitialContext } from 'graphql-yoga';
import type { Viewer } from './viewer.js';
import type { EntityCache, Served } from './cache/entity-cache.js';
import type { Caches } from './sources/caches.js';
import type { Dependencies } from './cache/response-cache.js';
import type { StaleReport } from './cache/stale-report.js';
import type { SourceHealthSnapshot } from './observability/source-health.js';
import type { MaybePromise } from './maybe-promise.js';
import type { Deadline } from './resilience/deadline.js';
import type { LiveEvents } from './realtime/live-events.js';
import type { SubscriptionLimiter } from './realtime/subscription-limiter.js';
import type { LiveReads } from './realtime/live-reads.js';
import type { EventPage, EventPageKey, MetricsEntity, MetricsKey, NotificationEntity, NotificationPageKey, OffsetPage, UserEntity } from './sources/models.js';
import type { Sources } from './sources/index.js';
import type { DeliveryQueue } from './writes/delivery-queue.js';
import type { Writes } from './writes/writes.js';

/**
 * Entity reads made by the requests in progress, summed over all of them:
 * what they hold in memory (vendor answers, entities, results) grows with it,
 * whatever the shape of the queries — load shedding bounds it
 * (LOAD_SHED_MAX_ENTITY_READS). A request's reads count until it finishes.
 */
export class ReadsInFlight {
  count = 0;
  /** Told how many reads each request made, when it finishes (the admission queue learns from it). */
  onFinish: ((reads: number) => void) | null = null;
}

/** One request's share of ReadsInFlight. */
interface RequestReads {
  made: number;
  /**
   * Until the response is done or its client gone. An execution goes on after its client hangs up (its fields
   * load when a slow vendor answers), and what it reads then is never given back: counted, each abandoned request
   * would leave its late reads in the total for good, and enough of them refuse every request (entity_reads).
   */
  open: boolean;
  readonly total: ReadsInFlight;
}

/**
 * The keys one request missed in a tick, asked of the entity's cache as one
 * batch. Until it answers, the request's map holds the batch for each of its
 * ids; then each id's answer (see EntityLoader).
 */
class RequestBatch<K> {
  readonly keys: K[] = [];
  readonly ids: string[] = [];
  /** Settles once every key's answer is in the request's map; never rejects (a failure is a key's answer). */
  readonly settled: Promise<void>;
  done!: () => void;

  constructor() {
    this.settled = new Promise<void>((resolve) => (this.done = resolve));
  }
}

const RESOLVED = Promise.resolve();

/**
 * DataLoader's scheduling: `dispatch` runs once the promise jobs queued so far
 * have run, and the ticks they queue, so every load that graphql's execution
 * makes in one pass over a level of fields lands in the same batch.
 */
function afterPromiseJobs(dispatch: () => void): void {
  void RESOLVED.then(process.nextTick.bind(process, dispatch));
}

/** What a request holds for an id it missed in L1 or primed: the answer, the failure, or the batch it is coming in. */
type Loaded<V> = Served<V> | Error | RequestBatch<unknown>;

/**
 * One entity's loads for one request. A key fresh in L1 is answered at once,
 * with no promise and no batch: on a cached query that per-field machinery was
 * most of the executor's time. The rest (misses, stale entries) are collected
 * per tick, as DataLoader collects them, and handed to the entity's cache as
 * one batch, which asks upstream only for what no tier has.
 *
 * Unlike DataLoader, no promise is made for a key, only for a load that has to
 * wait: keys started ahead (startMany: the prefetch's fields, loadMany: a
 * list's users) join the batch bare, and a load of one after its batch has
 * answered gets the answer at once. On a cold 50-user list DataLoader made a
 * promise, its two resolving functions and a record per key, and the
 * prefetch a `.catch` guard on each (bench/RESULTS.md, session 29).
 *
 * A key loaded again in the same request (prefetch, then the field's own
 * resolver) gets the answer of its first load, kept here. Not from L1: a key
 * fetched moments ago waits in L1's window, and a read there would move it
 * into the main part as if a second request had asked for it, so a cold
 * list would evict what is read (see MemoryTier). A failed load stays failed
 * for the rest of the request.
 *
 * What waits on a batch is a method bound to its arguments, not a closure made
 * per load: a closure's optimized code lives only as long as some instance of
 * it, so one made per call is compiled again after every full collection
 * (bench/RESULTS.md, session 36); a method's stays.
 */
export class EntityLoader<K, V> {
  /** The batch collecting this tick's misses, until it is dispatched. */
  private collecting: RequestBatch<K> | undefined;
  /** The first answer (or the batch it is coming in) to each id this request missed in L1 or primed; made on first use. */
  private loaded: Map<string, Loaded<V>> | undefined;

  constructor(
    private readonly cache: EntityCache<K, V>,
    /** The request's deadline, passed to every upstream call made for it. */
    private readonly deadline: Deadline,
    /** What the request read from L1, for the response cache. */
    private readonly dependencies: Dependencies,
    private readonly reads: RequestReads | null = null,
  ) {}

  load(key: K): MaybePromise<Served<V>> {
    this.count(1);
    return this.answer(key, this.cache.id(key));
  }

  /**
   * Starts the keys' loads, for loads of them to come (the fields the
   * prefetch starts for the users a root field names): they join this tick's batch with no
   * promise of their own, and a later load of one whose batch has answered by
   * then costs no promise at all.
   */
  startMany(keys: readonly K[]): void {
    this.count(keys.length);
    for (const key of keys) {
      const id = this.cache.id(key);
      if (this.loaded?.has(id) || this.cache.peekFresh(id, this.dependencies)) continue;
      this.join(key, id);
    }
  }

  /** The keys' loads, as `load` gives each, counted as one read each. */
  loadMany(keys: readonly K[]): MaybePromise<Served<V>>[] {
    this.count(keys.length);
    return keys.map((key) => this.answer(key, this.cache.id(key)));
  }

  /** A value the request already has (a list page's users), for later loads of its key. */
  prime(key: K, served: Served<V>): void {
    this.dependencies.cacheable = false;
    const id = this.cache.id(key);
    const loaded = (this.loaded ??= new Map());
    if (!loaded.has(id)) loaded.set(id, served);
  }

  private answer(key: K, id: string): MaybePromise<Served<V>> {
    let loaded = this.loaded?.get(id);
    if (loaded === undefined) {
      const hit = this.cache.peekFresh(id, this.dependencies);
      if (hit) return hit;
      loaded = this.join(key, id);
    }
    // Bound methods here, not closures made per load: see the class's comment.
    if (loaded instanceof RequestBatch) return loaded.settled.then(this.settledAnswer.bind(this, id));
    return loaded instanceof Error ? Promise.reject(loaded) : loaded;
  }

  /** Puts a missed key in this tick's batch. */
  private join(key: K, id: string): RequestBatch<K> {
    this.dependencies.cacheable = false;
    let batch = this.collecting;
    if (batch === undefined) {
      const started = (batch = this.collecting = new RequestBatch<K>());
      afterPromiseJobs(this.dispatch.bind(this, started));
    }
    batch.keys.push(key);
    batch.ids.push(id);
    (this.loaded ??= new Map()).set(id, batch);
    return batch;
  }

  private dispatch(batch: RequestBatch<K>): void {
    this.collecting = undefined;
    void this.cache.getMany(batch.keys, this.deadline, batch.ids).then(this.answered.bind(this, batch), this.failed.bind(this, batch));
  }

  private answered(batch: RequestBatch<K>, results: Array<Served<V> | Error>): void {
    const loaded = this.loaded!;
    const { ids } = batch;
    for (let i = 0; i < ids.length; i++) loaded.set(ids[i]!, results[i]!);
    batch.done();
  }

  private failed(batch: RequestBatch<K>, error: unknown): void {
    const failure = error instanceof Error ? error : new Error(String(error));
    for (const id of batch.ids) this.loaded!.set(id, failure);
    batch.done();
  }

  /** An id's answer once its batch has settled. */
  private settledAnswer(id: string): Served<V> {
    const answer = this.loaded!.get(id)!;
    if (answer instanceof Error) throw answer;
    return answer as Served<V>;
  }

  private count(n: number): void {
    if (!this.reads?.open) return;
    this.reads.made += n;
    this.reads.total.count += n;
  }
}

/** The request's loaders, one per cached entity, made on first use. */
export class Loaders {
  private readonly byEntity = new Map<string, EntityLoader<unknown, unknown>>();
  private readonly reads: RequestReads | null;

  constructor(
    private readonly caches: Caches,
    private readonly deadline: Deadline,
    readonly dependencies: Dependencies,
    /** Where this request's reads are counted until `finish()` (a request's loaders; none for a subscription's events). */
    readsInFlight?: ReadsInFlight,
  ) {
    this.reads = readsInFlight ? { made: 0, open: true, total: readsInFlight } : null;
  }

  /** The request is done: its reads no longer count as in flight. */
  finish(): void {
    if (!this.reads?.open) return;
    const { made, total } = this.reads;
    total.count -= made;
    this.reads.made = 0;
    this.reads.open = false;
    total.onFinish?.(made);
  }

  /** The loader of an entity a source declared (see `entities` in its definition). */
  entity<K, V>(name: string): EntityLoader<K, V> {
    let loader = this.byEntity.get(name);
    if (!loader) this.byEntity.set(name, (loader = new EntityLoader(this.caches.entity<unknown, unknown>(name), this.deadline, this.dependencies, this.reads)));
    return loader as EntityLoader<K, V>;
  }

  get user(): EntityLoader<string, UserEntity | null> {
    return this.entity('identity.user');
  }

  get metrics(): EntityLoader<MetricsKey, MetricsEntity | null> {
    return this.entity('analytics.metrics');
  }

  get unreadCount(): EntityLoader<string, number> {
    return this.entity('notifications.unreadCount');
  }

  get notificationPage(): EntityLoader<NotificationPageKey, OffsetPage<NotificationEntity>> {
    return this.entity('notifications.page');
  }

  get eventPage(): EntityLoader<EventPageKey, EventPage | null> {
    return this.entity('analytics.events');
  }
}

/** What the context factory adds to every request. */
export interface RequestServices {
  loaders: Loaders;
  sources: Sources;
  caches: Caches;
  writes: Writes;
  /** Secondary deliveries, to list and re-drive. */
  deliveries: DeliveryQueue;
  /** All the upstream work of this request shares it; fields still pending when it passes answer SOURCE_TIMEOUT. */
  deadline: Deadline;
  /** Fields answered with stale data, for the response's `extensions.stale`. */
  stale: StaleReport;
  /** The L1 entries the response was built from (see ResponseCache). */
  dependencies: Dependencies;
  /** The sources' health as this instance sees it: under WORKERS=N, every worker's together (setHealth). */
  sourceHealth: () => Promise<SourceHealthSnapshot[]>;
  simulatedUpstreams: boolean;
  /** Events for subscriptions (webhooks, on every instance). */
  live: LiveEvents;
  subscriptions: SubscriptionLimiter;
  /** What subscription events read again, batched across events. */
  liveReads: LiveReads;
  /** REQUEST_DEADLINE_MS: a subscription's each event gets a fresh deadline of it. */
  deadlineMs: number;
}

/** What resolvers see: yoga's request, the services, and the viewer the auth plugin adds. */
export interface GatewayContext extends YogaInitialContext, RequestServices {
  viewer: Viewer;
}
