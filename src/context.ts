import DataLoader from 'dataloader';
import type { YogaInitialContext } from 'graphql-yoga';
import type { Viewer } from './viewer.js';
import type { EntityCache, Served } from './cache/entity-cache.js';
import type { Caches } from './sources/caches.js';
import type { Dependencies } from './cache/response-cache.js';
import type { StaleReport } from './cache/stale-report.js';
import type { SourceHealthMonitor } from './observability/source-health.js';
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
  readonly total: ReadsInFlight;
}

/** A key with its id (see EntityCache.id), made once per load and passed along. */
interface KeyWithId<K> {
  key: K;
  id: string;
}

/**
 * One entity's loads for one request. A key fresh in L1 is answered at once,
 * with no promise and no batch: on a cached query that per-field machinery was
 * most of the executor's time. The rest (misses, stale entries) are collected
 * per tick by a DataLoader, made on first use, and handed to the entity's
 * cache as one batch, which asks upstream only for what no tier has.
 *
 * A key loaded again in the same request (prefetch, then the field's own
 * resolver) gets the answer of its first load, kept here. Not from L1: a key
 * fetched moments ago waits in L1's window, and a read there would move it
 * into the main part as if a second request had asked for it, so a cold
 * list would evict what is read (see MemoryTier). Not from DataLoader's
 * cache: it answers a repeat with a new promise and a batch of its own,
 * which on a cold list cost as much as the first load (bench/RESULTS.md,
 * session 13). Like DataLoader's cache, a failed load stays failed for the
 * rest of the request.
 */
export class EntityLoader<K, V> {
  private batch: DataLoader<KeyWithId<K>, Served<V>> | undefined;
  /** The first answer (or the promise of it) to each id this request missed in L1 or primed; made on first use. */
  private loaded: Map<string, MaybePromise<Served<V>>> | undefined;

  constructor(
    private readonly cache: EntityCache<K, V>,
    /** The request's deadline, passed to every upstream call made for it. */
    private readonly deadline: Deadline,
    /** What the request read from L1, for the response cache. */
    private readonly dependencies: Dependencies,
    private readonly reads: RequestReads | null = null,
  ) {}

  load(key: K): MaybePromise<Served<V>> {
    if (this.reads) {
      this.reads.made++;
      this.reads.total.count++;
    }
    const id = this.cache.id(key);
    const earlier = this.loaded?.get(id);
    if (earlier !== undefined) return earlier;
    const hit = this.cache.peekFresh(id, this.dependencies);
    if (hit) return hit;
    this.dependencies.cacheable = false;
    const answer = this.loader().load({ key, id });
    (this.loaded ??= new Map()).set(id, answer);
    return answer;
  }

  /** A value the request already has (a list page's users), for later loads of its key. */
  prime(key: K, served: Served<V>): void {
    this.dependencies.cacheable = false;
    const id = this.cache.id(key);
    const loaded = (this.loaded ??= new Map());
    if (!loaded.has(id)) loaded.set(id, served);
  }

  private loader(): DataLoader<KeyWithId<K>, Served<V>> {
    return (this.batch ??= new DataLoader(
      (batch) =>
        this.cache.getMany(
          batch.map((k) => k.key),
          this.deadline,
          batch.map((k) => k.id),
        ),
      // Repeats never reach it (see `loaded`), so it needs no cache of its own.
      { cache: false },
    ));
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
    this.reads = readsInFlight ? { made: 0, total: readsInFlight } : null;
  }

  /** The request is done: its reads no longer count as in flight. */
  finish(): void {
    if (!this.reads) return;
    const { made, total } = this.reads;
    total.count -= made;
    this.reads.made = 0;
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
  health: SourceHealthMonitor;
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
