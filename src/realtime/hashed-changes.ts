import { createHash } from 'node:crypto';
import { lruOfEntries } from '../cache/lru-of-entries.js';
import type { Logger } from '../logger.js';
import { declareLuaCommand, withLuaCommand, type RedisClient, type RedisConnection } from '../redis.js';
import type { Caches } from '../sources/caches.js';
import type { SourceChangeFeed } from '../sources/define-source.js';
import type { HttpSource } from '../sources/http-source.js';
import type { LiveEvents, LiveTopic } from './live-events.js';

/** Hashes remembered per instance without Redis; with it, in Redis for this long. */
const LOCAL_HASHES = 100_000;
const SHARED_HASH_TTL_S = 7 * 86_400;

/** A record's hash swapped for the new one (ARGV[1], kept ARGV[2] s): `SET … EX … GET`, whose GET is Redis 6.2's. */
const SWAP_HASH = `local before = redis.call('GET', KEYS[1]) redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) return before`;

declareLuaCommand('swapHash', { lua: SWAP_HASH, numberOfKeys: 1 });

type WithSwapHash = RedisClient & { swapHash(key: string, hash: string, ttlSeconds: number): Promise<string | null> };

export interface HashedChangesOptions {
  source: string;
  feed: SourceChangeFeed<HttpSource>;
  caches: Caches;
  live: LiveEvents;
  redis: RedisConnection | null;
  logger: Logger;
  onChange?: (source: string, n: number) => void;
}

/**
 * Changes of a vendor with no filter for them: each record the cache fetches
 * anyway (a miss, a refresh) is hashed; one whose hash differs from the last
 * one seen changed, and is published and dropped on the other instances. In
 * Redis the swap is one script (a `GET` and a `SET`), so across instances a
 * change is reported once. A record seen for the first time is not a change.
 */
export class HashedChanges {
  private readonly local = lruOfEntries<string, string>(LOCAL_HASHES);
  /** The connection's client with the swap script; null without Redis. */
  private readonly swapper: WithSwapHash | null;

  constructor(private readonly options: HashedChangesOptions) {
    this.swapper = options.redis ? withLuaCommand<WithSwapHash>(options.redis.client, 'swapHash') : null;
    options.logger.info({ source: options.source }, `Change feed: ${options.source}'s changes found by hashing the records the cache refreshes`);
  }

  /** What the cache fetched for the feed's entity: keys are record ids, results the records (null: none, Error: failed). */
  observe(keys: readonly unknown[], results: ReadonlyArray<unknown>): void {
    const records: [string, unknown, string][] = [];
    results.forEach((value, i) => {
      const id = keys[i];
      if (typeof id !== 'string' || value === null || value === undefined || value instanceof Error) return;
      records.push([id, value, createHash('sha1').update(JSON.stringify(value)).digest('base64url')]);
    });
    if (records.length > 0) void this.compare(records);
  }

  private async compare(records: [string, unknown, string][]): Promise<void> {
    const { redis, feed, caches, live, source } = this.options;
    let previous: (string | null | undefined)[];
    const swapper = this.swapper;
    if (redis?.available && swapper) {
      // One swap a record; the client pipelines them (per node, on a cluster).
      const replies = await Promise.all(
        records.map(([id, , hash]) =>
          swapper.swapHash(redis.key(`changes:${source}:hash:${id}`), hash, SHARED_HASH_TTL_S).then(
            (value): [Error | null, unknown] => [null, value],
            (err: Error): [Error | null, unknown] => [err, null],
          ),
        ),
      );
      previous = records.map(([id], i) => {
        const [err, value] = replies?.[i] ?? [new Error('no reply'), null];
        return err ? this.local.get(id) : (value as string | null);
      });
    } else {
      previous = records.map(([id]) => this.local.get(id));
    }
    const changed = records.filter(([id, , hash], i) => {
      this.local.set(id, hash);
      const before = previous[i];
      return before !== null && before !== undefined && before !== hash;
    });
    if (changed.length === 0) return;
    this.options.onChange?.(source, changed.length);
    // After the fetch that found them has stored its answer: other instances drop their older copies, lists showing them go.
    setImmediate(() => {
      void Promise.all([caches.entity(feed.entity).invalidate(changed.map(([id]) => id)), ...feed.alsoDrop.map((d) => caches.entity(d.entity).invalidate(d.groups))]).catch(
        () => undefined,
      );
    });
    // Not announced (Redis away): its subscribers learn of the change with the next one (its hash is already swapped).
    await Promise.all(changed.map(([id, value]) => live.publish(feed.topic as LiveTopic, id, value as never))).catch((err: unknown) =>
      this.options.logger.warn({ source, changed: changed.length, err: (err as Error).message }, 'Changes found by hashing could not be announced to subscribers'),
    );
  }
}
