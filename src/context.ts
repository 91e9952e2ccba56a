import DataLoader from 'dataloader';
import type { YogaInitialContext } from 'graphql-yoga';
import type { Viewer } from './auth/viewer.js';
import type { SourceHealthMonitor } from './observability/source-health.js';
import type { Deadline } from './resilience/deadline.js';
import type { EventPage, MetricsEntity, MetricsRange, NotificationEntity, OffsetPage, UserEntity } from './sources/models.js';
import type { Sources } from './sources/index.js';

export interface MetricsKey {
  userId: string;
  range: MetricsRange;
}

export interface NotificationPageKey {
  userId: string;
  offset: number;
  first: number;
  unreadOnly: boolean;
}

export interface EventPageKey {
  userId: string;
  limit: number;
  cursor: string | null;
}

/**
 * Per-request DataLoaders, one per source and bulk operation, made on first
 * use. Each batch function keeps DataLoader's contract — one value per key, in
 * key order — by looking answers up by id, since vendors reorder and omit.
 */
export class Loaders {
  private userLoader: DataLoader<string, UserEntity | null> | undefined;
  private metricsLoader: DataLoader<MetricsKey, MetricsEntity | null, string> | undefined;
  private unreadLoader: DataLoader<string, number | null> | undefined;
  private notificationPageLoader: DataLoader<NotificationPageKey, OffsetPage<NotificationEntity>, string> | undefined;
  private eventPageLoader: DataLoader<EventPageKey, EventPage | null, string> | undefined;

  constructor(
    private readonly sources: Sources,
    /** The request's deadline, passed to every upstream call made for it. */
    private readonly deadline: Deadline,
  ) {}

  get user(): DataLoader<string, UserEntity | null> {
    return (this.userLoader ??= new DataLoader(async (ids) => {
      const found = await this.sources.identity.usersByIds(ids, this.deadline);
      return ids.map((id) => found.get(id) ?? null);
    }));
  }

  get metrics(): DataLoader<MetricsKey, MetricsEntity | null, string> {
    return (this.metricsLoader ??= new DataLoader(
      async (keys) => {
        // One bulk query per distinct range; most requests have exactly one.
        const byRange = new Map<string, { range: MetricsRange; ids: string[] }>();
        for (const key of keys) {
          const r = rangeKey(key.range);
          let group = byRange.get(r);
          if (!group) byRange.set(r, (group = { range: key.range, ids: [] }));
          group.ids.push(key.userId);
        }
        const results = new Map<string, Map<string, MetricsEntity> | Error>();
        await Promise.all(
          [...byRange].map(async ([r, group]) => {
            results.set(r, await this.sources.analytics.metrics(group.ids, group.range, this.deadline).catch(asError));
          }),
        );
        return keys.map((key) => {
          const found = results.get(rangeKey(key.range))!;
          return found instanceof Error ? found : (found.get(key.userId) ?? null);
        });
      },
      { cacheKeyFn: (key) => `${rangeKey(key.range)}|${key.userId}` },
    ));
  }

  get unreadCount(): DataLoader<string, number | null> {
    return (this.unreadLoader ??= new DataLoader(async (ids) => {
      const counts = await this.sources.notifications.unreadCounts(ids, this.deadline);
      // The vendor counts unknown ids as 0; an id it left out of its answer is unknown too.
      return ids.map((id) => counts.get(id) ?? 0);
    }));
  }

  /** Notification lists have no bulk endpoint: this only shares one call between a prefetch and its field. */
  get notificationPage(): DataLoader<NotificationPageKey, OffsetPage<NotificationEntity>, string> {
    return (this.notificationPageLoader ??= new DataLoader(
      (keys) => Promise.all(keys.map((k) => this.sources.notifications.list(k.userId, k.offset, k.first, k.unreadOnly, this.deadline).catch(asError))),
      { cacheKeyFn: (k) => `${k.userId}|${k.offset}|${k.first}|${k.unreadOnly}` },
    ));
  }

  /** Event pages have no bulk endpoint either; same sharing. */
  get eventPage(): DataLoader<EventPageKey, EventPage | null, string> {
    return (this.eventPageLoader ??= new DataLoader(
      (keys) => Promise.all(keys.map((k) => this.sources.analytics.events(k.userId, k.limit, k.cursor, this.deadline).catch(asError))),
      { cacheKeyFn: (k) => `${k.userId}|${k.limit}|${k.cursor ?? ''}` },
    ));
  }
}

/** DataLoader fails one key when its slot holds an Error, leaving the other keys' values intact. */
function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

function rangeKey(range: MetricsRange): string {
  return `${range.fromSec}:${range.toSec}:${range.granularity}`;
}

/** What the context factory adds to every request. */
export interface RequestServices {
  loaders: Loaders;
  sources: Sources;
  /** All the upstream work of this request shares it; fields still pending when it passes answer SOURCE_TIMEOUT. */
  deadline: Deadline;
  health: SourceHealthMonitor;
  simulatedUpstreams: boolean;
}

/** What resolvers see: yoga's request, the services, and the viewer the auth plugin adds. */
export interface GatewayContext extends YogaInitialContext, RequestServices {
  viewer: Viewer;
}
