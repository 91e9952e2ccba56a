import type { SourceName } from '../errors.js';
import type { Logger } from '../logger.js';
import type { RedisConnection } from '../redis.js';
import { EntityCache, type CacheTiers } from '../cache/entity-cache.js';
import { InvalidationBus, type Invalidation } from '../cache/invalidation-bus.js';
import type { Siblings } from '../siblings.js';
import { MemoryTier } from '../cache/memory-tier.js';
import type { CacheConfig } from '../cache/policy.js';
import { RedisTier } from '../cache/redis-tier.js';
import type { AnySourceDefinition, EntityReads } from './define-source.js';
import type { HttpSource } from './http-source.js';
import type { MetricsEntity, MetricsKey, NotificationEntity, NotificationPageKey, OffsetPage, UserEntity } from './models.js';

/** Bump when a cached entity's shape changes: entries of the old shape are then never read. */
// v2: analytics.metrics kept as columns (CompactMetrics.toStored).
const CACHE_FORMAT = 'v2';

/**
 * Every cached entity its source declares (`entities` in its definition),
 * each an EntityCache over that source's batch fetch: the sources' reads put
 * behind the cache tiers (here, above both, so the cache knows nothing of the
 * sources). These fetches are the only place reads reach the sources;
 * the request's loaders (src/context.ts, batching per tick) sit in front, the tiers and single-flight (across
 * requests and instances) behind.
 */
export class Caches {
  readonly l1: MemoryTier;
  private readonly bus: { publish(message: Invalidation): Promise<void>; close(): Promise<void> } | null;
  private readonly byEntity = new Map<string, EntityCache<never, unknown>>();

  constructor(
    private readonly config: CacheConfig,
    sources: Readonly<Record<string, HttpSource>>,
    definitions: readonly AnySourceDefinition[],
    options: {
      redis: RedisConnection | null;
      logger: Logger;
      sharedDeadlineMs: number;
      count?: CacheTiers['count'];
      /** The other workers of this machine (WORKERS=N): without Redis, invalidations reach their L1 through the primary. */
      siblings?: Siblings | null;
      /** Sees every batch an entity fetched from its source (change detection by hashing). */
      observe?: (entity: string, keys: readonly unknown[], results: ReadonlyArray<unknown>) => void;
    },
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
        : config.enabled && options.siblings
          ? siblingBus(options.siblings, (m) => this.byEntity.get(m.entity)?.dropLocal(m.groups))
          : null;
    const tiers: CacheTiers = { enabled: config.enabled, l1: this.l1, l2, bus: this.bus, logger, format: CACHE_FORMAT, ...(options.count ? { count: options.count } : {}) };
    const { observe } = options;
    for (const definition of definitions) {
      const source = sources[definition.name];
      if (!source) throw new Error(`no source "${definition.name}" was built for its cached entities`);
      for (const [entity, reads] of Object.entries(definition.entities ?? {}) as [string, EntityReads<HttpSource, unknown, unknown>][]) {
        const cache = new EntityCache<unknown, unknown>(
          {
            entity,
            // A source outside the built-in list (a fixture, a plugin) carries its own name.
            source: definition.name as SourceName,
            policy: config.entities[entity] ?? reads.defaults,
            negativeTtlMs: config.negativeTtlMs,
            batchWindowMs: config.batchWindowMs,
            sharedDeadlineMs: options.sharedDeadlineMs,
            group: (k) => reads.group(k),
            variant: (k) => reads.variant(k),
            fetch: observe
              ? (keys, deadline) =>
                  reads.fetch(source, keys, deadline).then((results) => {
                    observe(entity, keys, results);
                    return results;
                  })
              : (keys, deadline) => reads.fetch(source, keys, deadline),
            ...(reads.perKey ? { perKey: true } : {}),
            ...(reads.stored ? { stored: reads.stored } : {}),
          },
          tiers,
        );
        this.byEntity.set(entity, cache as unknown as EntityCache<never, unknown>);
      }
    }
  }

  /** The cache of an entity a source declared; an undeclared name is a bug in the code that asks. */
  entity<K, V>(name: string): EntityCache<K, V> {
    const cache = this.byEntity.get(name);
    if (!cache) throw new Error(`no source declares the cached entity "${name}"`);
    return cache as unknown as EntityCache<K, V>;
  }

  get user(): EntityCache<string, UserEntity | null> {
    return this.entity('identity.user');
  }
  get metrics(): EntityCache<MetricsKey, MetricsEntity | null> {
    return this.entity('analytics.metrics');
  }
  get unreadCount(): EntityCache<string, number> {
    return this.entity('notifications.unreadCount');
  }
  get notificationPage(): EntityCache<NotificationPageKey, OffsetPage<NotificationEntity>> {
    return this.entity('notifications.page');
  }

  get enabled(): boolean {
    return this.config.enabled;
  }

  /** After a write to a user's profile: the user, and the list windows that show it. */
  async invalidateProfile(userId: string): Promise<void> {
    await Promise.all([this.user.invalidate([userId]), this.entity('identity.userPage').invalidate(['all'])]);
  }

  /**
   * After our own write to a user's profile: dropped everywhere, then the
   * vendor's answer to the write stored. A vendor's search can list the user as
   * before for a while (Auth0's index is eventually consistent), and every read
   * by id goes through it: without the answer stored, the read after the write
   * would cache the old profile again.
   */
  async profileWritten(userId: string, written: UserEntity | null): Promise<void> {
    await this.invalidateProfile(userId);
    if (written !== null) this.user.prime([[userId, written]]);
  }

  /**
   * Once the vendor's reads have settled after our own write to a profile:
   * the list windows, which its search may have shown as before meanwhile.
   * The user stored from the write's answer stays (it is the write); without
   * an answer, the user is dropped again too.
   */
  async profileSettled(userId: string, written: UserEntity | null): Promise<void> {
    await (written === null ? this.invalidateProfile(userId) : this.entity('identity.userPage').invalidate(['all']));
  }

  /** After a notification was sent to, or marked read by, a user (and again once the vendor's reads have settled). */
  async invalidateNotifications(userId: string): Promise<void> {
    await Promise.all([this.unreadCount.invalidate([userId]), this.notificationPage.invalidate([userId])]);
  }

  async close(): Promise<void> {
    await this.bus?.close();
  }
}

/** Invalidations between the workers of one machine without Redis: through the primary, to every other worker's L1. */
function siblingBus(siblings: Siblings, dropLocal: (m: Invalidation) => void) {
  siblings.on('cache-invalidate', (m) => dropLocal(m as Invalidation));
  return {
    publish: (message: Invalidation) => {
      siblings.send('cache-invalidate', message);
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
  };
}
