import type { IPolicy } from 'cockatiel';
import type { Logger } from '../logger.js';
import { optionalRedisPolicy, type RedisConnection } from '../redis.js';

/** Drops every key listed in a group's index set, then the set. */
const DELETE_GROUPS = `
local n = 0
for i = 1, #KEYS do
  local members = redis.call('SMEMBERS', KEYS[i])
  for _, k in ipairs(members) do n = n + redis.call('DEL', k) end
  redis.call('DEL', KEYS[i])
end
return n`;

export interface L2Write {
  key: string;
  indexKey: string;
  json: string;
  ttlMs: number;
}

/**
 * L2: entries in Redis as JSON, shared by every instance. Redis is an
 * accelerator here, never a dependency: every command is bounded by a short
 * timeout, and five failures in a row open a breaker that skips L2 for a
 * while, so a slow or dead Redis costs at most one timeout per request and
 * then nothing. Failures read as misses; writes are fire-and-forget.
 */
export class RedisTier {
  private readonly policy: IPolicy;

  constructor(
    private readonly redis: RedisConnection,
    timeoutMs: number,
    logger: Logger,
  ) {
    const { policy, breaker } = optionalRedisPolicy(timeoutMs);
    breaker.onBreak(() => logger.warn({ cacheTier: 'L2' }, 'L2 cache (Redis) failing: serving from L1 and the upstreams until it answers again'));
    breaker.onReset(() => logger.info({ cacheTier: 'L2' }, 'L2 cache (Redis) answering again: in use'));
    this.policy = policy;
  }

  /** Usable right now: connected and not tripped. */
  get available(): boolean {
    return this.redis.available;
  }

  key(entity: string, group: string, variant: string): string {
    // The group in braces is a Redis Cluster hash tag: a group's entries and its index share a slot.
    return this.redis.key('c', entity, `{${group}}`, variant);
  }

  indexKey(entity: string, group: string): string {
    return this.redis.key('c', 'idx', entity, `{${group}}`);
  }

  /** The stored JSON per key, null where missing; undefined when L2 could not be read. */
  async getMany(keys: string[]): Promise<(string | null)[] | undefined> {
    if (keys.length === 0 || !this.redis.available) return undefined;
    try {
      return await this.policy.execute(() => this.redis.client.mget(keys));
    } catch {
      return undefined;
    }
  }

  setMany(writes: L2Write[]): void {
    if (writes.length === 0 || !this.redis.available) return;
    this.policy
      .execute(() => {
        const pipeline = this.redis.client.pipeline();
        for (const w of writes) {
          pipeline.set(w.key, w.json, 'PX', w.ttlMs);
          pipeline.sadd(w.indexKey, w.key);
          pipeline.pexpire(w.indexKey, w.ttlMs, 'GT');
          // PEXPIRE GT leaves a set without a TTL untouched; a new set has none yet.
          pipeline.pexpire(w.indexKey, w.ttlMs, 'NX');
        }
        return pipeline.exec();
      })
      .catch(() => undefined);
  }

  /** Deletes every entry of the groups; false when Redis could not be told (the caller keeps it for later). */
  async deleteGroups(indexKeys: string[]): Promise<boolean> {
    if (indexKeys.length === 0) return true;
    if (!this.redis.available) return false;
    try {
      await this.policy.execute(() => this.redis.client.eval(DELETE_GROUPS, indexKeys.length, ...indexKeys));
      return true;
    } catch {
      return false;
    }
  }
}
