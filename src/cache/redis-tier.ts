import type { Logger } from '../logger.js';
import { declareLuaCommand, optionalRedisPolicy, withLuaCommand, type RedisCallPolicy, type RedisClient, type RedisConnection } from '../redis.js';

/** Drops every key listed in a group's index set, then the set. */
const DELETE_GROUPS = `
local n = 0
for i = 1, #KEYS do
  local members = redis.call('SMEMBERS', KEYS[i])
  for _, k in ipairs(members) do n = n + redis.call('DEL', k) end
  redis.call('DEL', KEYS[i])
end
return n`;

/**
 * Stores entries, each with its TTL, adds each to its group's index set, and
 * keeps that set alive as long as its longest-lived entry. KEYS: entry key and
 * index key per write; ARGV: JSON and TTL (ms) per write.
 */
const WRITE_ENTRIES = `
for i = 1, #ARGV, 2 do
  local ttl = tonumber(ARGV[i + 1])
  redis.call('SET', KEYS[i], ARGV[i], 'PX', ttl)
  redis.call('SADD', KEYS[i + 1], KEYS[i])
  if redis.call('PTTL', KEYS[i + 1]) < ttl then redis.call('PEXPIRE', KEYS[i + 1], ttl) end
end
return #ARGV / 2`;

declareLuaCommand('writeCacheEntries', { lua: WRITE_ENTRIES });

/** The script as a command: its key count, the keys, the arguments (ioredis flattens the arrays into KEYS and ARGV). */
type WithWriteEntries = RedisClient & { writeCacheEntries(numberOfKeys: number, keys: string[], args: (string | number)[]): Promise<number> };

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
  private readonly policy: RedisCallPolicy;
  /** The client with the write script (standalone Redis; a cluster writes with single commands). */
  private readonly scripted: WithWriteEntries;

  constructor(
    private readonly redis: RedisConnection,
    timeoutMs: number,
    logger: Logger,
  ) {
    this.scripted = withLuaCommand<WithWriteEntries>(redis.client, 'writeCacheEntries');
    const { policy, breaker } = optionalRedisPolicy(timeoutMs);
    // One line an outage: the breaker opens again after each failed probe (every 2 s), which says nothing new.
    let failing = false;
    breaker.onBreak(() => {
      if (failing) return;
      failing = true;
      logger.warn({ cacheTier: 'L2' }, 'L2 cache (Redis) failing: serving from L1 and the upstreams until it answers again');
    });
    breaker.onReset(() => {
      failing = false;
      logger.info({ cacheTier: 'L2' }, 'L2 cache (Redis) answering again: in use');
    });
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
      // On a cluster MGET may not span slots (each group is its own): one GET a key, pipelined per node by the client.
      return await this.policy.execute(() => (this.redis.cluster ? Promise.all(keys.map((k) => this.redis.client.get(k))) : this.redis.client.mget(keys)));
    } catch {
      return undefined;
    }
  }

  setMany(writes: L2Write[]): void {
    if (writes.length === 0 || !this.redis.available) return;
    this.policy
      .execute((): Promise<unknown> => {
        if (this.redis.cluster) {
          // A cluster pipeline may not span nodes: single commands, which the client pipelines per node itself.
          // (Not the script, one call a write: ioredis' auto-pipelining refused scripts of several slots in one tick.)
          const { client } = this.redis;
          return Promise.all(
            writes.flatMap((w) => [
              client.set(w.key, w.json, 'PX', w.ttlMs),
              client.sadd(w.indexKey, w.key),
              client.pexpire(w.indexKey, w.ttlMs, 'GT'),
              // PEXPIRE GT leaves a set without a TTL untouched; a new set has none yet.
              client.pexpire(w.indexKey, w.ttlMs, 'NX'),
            ]),
          );
        }
        // One command for the batch: as a pipeline of four commands a write, ioredis' own work made a cold
        // 50-user list with Redis on cost 18–26 ms of CPU a query, against 11 this way (bench/RESULTS.md, session 14).
        const keys: string[] = [];
        const args: (string | number)[] = [];
        for (const w of writes) {
          keys.push(w.key, w.indexKey);
          args.push(w.json, w.ttlMs);
        }
        return this.scripted.writeCacheEntries(keys.length, keys, args);
      })
      .catch(() => undefined);
  }

  /**
   * On a cluster a script may only touch the keys it is given, all in one slot: each group alone, its members read
   * and then deleted with the index in one DEL (they share the group's hash tag, so its slot).
   */
  private async deleteGroupsOnCluster(indexKeys: string[]): Promise<number> {
    const { client } = this.redis;
    const deleted = await Promise.all(indexKeys.map(async (idx) => client.del(idx, ...(await client.smembers(idx)))));
    return deleted.reduce((a, b) => a + b, 0);
  }

  /** Deletes every entry of the groups; false when Redis could not be told (the caller keeps it for later). */
  async deleteGroups(indexKeys: string[]): Promise<boolean> {
    if (indexKeys.length === 0) return true;
    if (!this.redis.available) return false;
    try {
      await this.policy.execute(() => (this.redis.cluster ? this.deleteGroupsOnCluster(indexKeys) : this.redis.client.eval(DELETE_GROUPS, indexKeys.length, ...indexKeys)));
      return true;
    } catch {
      return false;
    }
  }
}
