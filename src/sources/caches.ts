import type { Logger } from '../observability/logger.js';
import type { RedisConnection } from '../redis.js';
import type { Deadline } from '../resilience/deadline.js';
import { EntityCache, type BatchFetch, type CacheTiers, type EntityCacheOptions } from '../cache/entity-cache.js';
import { InvalidationBus } from '../cache/invalidation-bus.js';
import { MemoryTier } from '../cache/memory-tier.js';
import type { CacheConfig, CachedEntity } from '../cache/policy.js';
import { RedisTier } from '../cache/redis-tier.js';
import type { Sources } from './index.js';
import { entitySettings } from './registry.js';
import type { EventPage, EventPageKey, MetricsEntity, MetricsKey, MetricsRange, NotificationEntity, NotificationPageKey, OffsetPage, UserEntity } from './models.js';

/** Bump when a cached entity's shape changes: entries of the old shape are then never read. */
const CACHE_FORMAT = 'v1';

/**
 * Every cached entity, with the batch fetch behind it: the sources' reads
 * put behind the cache tiers (here, above both, so the cache knows nothing
 * of the sources). The fetches here are
 * the only place reads reach the sources; DataLoader (per request) sits in
 * front, the tiers and single-flight (across requests and instances) behind.
 */
export class Caches {
  readonly user: EntityCache<string, UserEntity | null>;
  readonly metrics: EntityCache<MetricsKey, MetricsEntity | null>;
  readonly unreadCount: EntityCache<string, number>;
  readonly notificationPage: EntityCache<NotificationPageKey, OffsetPage<NotificationEntity>>;
  readonly eventPage: EntityCache<EventPageKey, EventPage | null>;
  readonly l1: MemoryTier;
  private readonly bus: InvalidationBus | null;
  private readonly byEntity: Map<string, EntityCache<never, unknown>>;

  constructor(
    private readonly config: CacheConfig,
    sources: Sources,
    options: { redis: RedisConnection | null; logger: Logger; sharedDeadlineMs: number; count?: CacheTiers['count'] },
  ) {
    const { redis, logger } = options;
    this.l1 = new MemoryTier(config.l1MaxBytes);
    const l2 = config.enabled && redis ? new RedisTier(redis, config.l2TimeoutMs, logger) : null;
    this.bus =
      config.enabled && redis
        ? new InvalidationBus(redis, logger, {
            dropLocal: (m) => this.byEntity.get(m.entity)?.dropLocal(m.groups),
            resync: () => this.l1.clear(),
            deleteShared: (m) => {
              const cache = this.byEntity.get(m.entity);
              return l2 && cache ? l2.deleteGroups(m.groups.map((g) => cache.indexKey(g)!)) : Promise.resolve(true);
            },
          })
        : null;
    const tiers: CacheTiers = { enabled: config.enabled, l1: this.l1, l2, bus: this.bus, logger, format: CACHE_FORMAT, ...(options.count ? { count: options.count } : {}) };
    const make = <K, V>(entity: CachedEntity, spec: Pick<EntityCacheOptions<K, V>, 'group' | 'variant' | 'fetch' | 'perKey'>) =>
      new EntityCache<K, V>(
        {
          entity,
          source: entitySettings(entity).source,
          policy: config.entities[entity] ?? entitySettings(entity).defaults,
          negativeTtlMs: config.negativeTtlMs,
          batchWindowMs: config.batchWindowMs,
          sharedDeadlineMs: options.sharedDeadlineMs,
          ...spec,
        },
        tiers,
      );
    const byUser = (id: string) => id;
    const whole = () => '';

    this.user = make<string, UserEntity | null>('identity.user', {
      group: byUser,
      variant: whole,
      fetch: async (ids, deadline) => {
        const found = await sources.identity.usersByIds(ids, deadline);
        return ids.map((id) => found.get(id) ?? null);
      },
    });
    this.metrics = make('analytics.metrics', {
      group: (k) => k.userId,
      variant: (k) => rangeKey(k.range),
      fetch: metricsByRange(sources),
    });
    this.unreadCount = make<string, number>('notifications.unreadCount', {
      group: byUser,
      variant: whole,
      fetch: async (ids, deadline) => {
        const counts = await sources.notifications.unreadCounts(ids, deadline);
        // The vendor counts unknown ids as 0; an id it left out of its answer is unknown too.
        return ids.map((id) => counts.get(id) ?? 0);
      },
    });
    // Lists have no bulk endpoint: one call per key, each failing alone (and not held for a cross-request batch).
    this.notificationPage = make('notifications.page', {
      perKey: true,
      group: (k) => k.userId,
      variant: (k) => `${k.offset}:${k.first}:${k.unreadOnly ? 'unread' : 'all'}`,
      fetch: (keys, deadline) => Promise.all(keys.map((k) => sources.notifications.list(k.userId, k.offset, k.first, k.unreadOnly, deadline).catch(asError))),
    });
    this.eventPage = make('analytics.events', {
      perKey: true,
      group: (k) => k.userId,
      variant: (k) => `${k.limit}:${k.cursor ?? ''}`,
      fetch: (keys, deadline) => Promise.all(keys.map((k) => sources.analytics.events(k.userId, k.limit, k.cursor, deadline).catch(asError))),
    });
    this.byEntity = new Map<string, EntityCache<never, unknown>>(
      [this.user, this.metrics, this.unreadCount, this.notificationPage, this.eventPage].map((c) => [c.entity, c as unknown as EntityCache<never, unknown>]),
    );
  }

  get enabled(): boolean {
    return this.config.enabled;
  }

  /** After a write to a user's profile. */
  invalidateProfile(userId: string): Promise<void> {
    return this.user.invalidate([userId]);
  }

  /** After a notification was sent to, or marked read by, a user. */
  async invalidateNotifications(userId: string): Promise<void> {
    await Promise.all([this.unreadCount.invalidate([userId]), this.notificationPage.invalidate([userId])]);
  }

  async close(): Promise<void> {
    await this.bus?.close();
  }
}

/** One bulk query per distinct range; most requests have exactly one. */
function metricsByRange(sources: Sources): BatchFetch<MetricsKey, MetricsEntity | null> {
  return async (keys, deadline: Deadline) => {
    const byRange = new Map<string, { range: MetricsRange; ids: string[] }>();
    for (const key of keys) {
      const r = rangeKey(key.range);
      let group = byRange.get(r);
      if (!group) byRange.set(r, (group = { range: key.range, ids: [] }));
      group.ids.push(key.userId);
    }
    const results = new Map<string, Map<string, MetricsEntity | Error> | Error>();
    await Promise.all(
      [...byRange].map(async ([r, group]) => {
        results.set(r, await sources.analytics.metrics(group.ids, group.range, deadline).catch(asError));
      }),
    );
    return keys.map((key) => {
      const found = results.get(rangeKey(key.range))!;
      return found instanceof Error ? found : (found.get(key.userId) ?? null);
    });
  };
}

function rangeKey(range: MetricsRange): string {
  return `${range.fromSec}:${range.toSec}:${range.granularity}`;
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
