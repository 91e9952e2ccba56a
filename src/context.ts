import DataLoader from 'dataloader';
import type { YogaInitialContext } from 'graphql-yoga';
import type { Viewer } from './auth/viewer.js';
import type { Caches, EntityCache, Served } from './cache/index.js';
import type { StaleReport } from './cache/stale-report.js';
import type { SourceHealthMonitor } from './observability/source-health.js';
import type { Deadline } from './resilience/deadline.js';
import type { EventPage, EventPageKey, MetricsEntity, MetricsKey, NotificationEntity, NotificationPageKey, OffsetPage, UserEntity } from './sources/models.js';
import type { Sources } from './sources/index.js';
import type { DeliveryQueue } from './writes/delivery-queue.js';
import type { Writes } from './writes/writes.js';

/**
 * Per-request DataLoaders, one per cached entity, made on first use: they
 * collect the keys a request asks for in one tick and hand them to the
 * entity's cache as one batch (which asks upstream only for what no tier has).
 * Values come wrapped in `Served`, which says whether they are stale.
 */
export class Loaders {
  private userLoader: DataLoader<string, Served<UserEntity | null>, string> | undefined;
  private metricsLoader: DataLoader<MetricsKey, Served<MetricsEntity | null>, string> | undefined;
  private unreadLoader: DataLoader<string, Served<number>, string> | undefined;
  private notificationPageLoader: DataLoader<NotificationPageKey, Served<OffsetPage<NotificationEntity>>, string> | undefined;
  private eventPageLoader: DataLoader<EventPageKey, Served<EventPage | null>, string> | undefined;

  constructor(
    private readonly caches: Caches,
    /** The request's deadline, passed to every upstream call made for it. */
    private readonly deadline: Deadline,
  ) {}

  get user(): DataLoader<string, Served<UserEntity | null>, string> {
    return (this.userLoader ??= this.loader(this.caches.user));
  }

  get metrics(): DataLoader<MetricsKey, Served<MetricsEntity | null>, string> {
    return (this.metricsLoader ??= this.loader(this.caches.metrics));
  }

  get unreadCount(): DataLoader<string, Served<number>, string> {
    return (this.unreadLoader ??= this.loader(this.caches.unreadCount));
  }

  get notificationPage(): DataLoader<NotificationPageKey, Served<OffsetPage<NotificationEntity>>, string> {
    return (this.notificationPageLoader ??= this.loader(this.caches.notificationPage));
  }

  get eventPage(): DataLoader<EventPageKey, Served<EventPage | null>, string> {
    return (this.eventPageLoader ??= this.loader(this.caches.eventPage));
  }

  private loader<K, V>(cache: EntityCache<K, V>): DataLoader<K, Served<V>, string> {
    return new DataLoader((keys) => cache.getMany(keys, this.deadline), { cacheKeyFn: (key) => cache.id(key) });
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
  health: SourceHealthMonitor;
  simulatedUpstreams: boolean;
}

/** What resolvers see: yoga's request, the services, and the viewer the auth plugin adds. */
export interface GatewayContext extends YogaInitialContext, RequestServices {
  viewer: Viewer;
}
