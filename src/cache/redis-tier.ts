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

/**
 * An index set's TTL raised to ARGV[1] ms when shorter or unset: what `PEXPIRE GT` and `PEXPIRE NX` together do, but
 * those options are Redis 7.0's, and managed Redis still runs 6.x (Azure's default, many ElastiCache clusters).
 */
const KEEP_INDEX_ALIVE = `if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end return 1`;

declareLuaCommand('keepIndexAlive', { lua: KEEP_INDEX_ALIVE, numberOfKeys: 1 });

/** The script as a command: its key count, the keys, the arguments (ioredis flattens the arrays into KEYS and ARGV). */
type WithWriteEntries = RedisClient & {
  writeCacheEntries(numberOfKeys: number, keys: string[], args: (string | number)[]): Promise<number>;
  keepIndexAlive(indexKey: string, ttlMs: number): Promise<number>;
};

/** Redis runs a script alone: writes beyond this many a turn go as several calls. */
const MAX_WRITES_A_CALL = 500;
/** Past this many keys waiting, an MGET goes at once rather than at the end of the tick. */
const MAX_KEYS_A_READ = 2000;

interface PendingReads {
  keys: string[];
  /** Each caller's keys are `keys[from..to)`. */
  callers: { from: number; to: number; resolve: (values: (string | null)[] | undefined) => void }[];
}

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
  /** The client with the write scripts (standalone Redis: the batch's; a cluster: the index's TTL, a write's keys one by one). */
  private readonly scripted: WithWriteEntries;
  /** Reads asked for in this tick, sent as one MGET when it ends (see getMany). */
  private reads: PendingReads | null = null;
  /** Writes stored in this turn of the event loop, sent as one script call when it ends (see setMany). */
  private writes: L2Write[] = [];

  constructor(
    private readonly redis: RedisConnection,
    timeoutMs: number,
    logger: Logger,
  ) {
    this.scripted = withLuaCommand<WithWriteEntries>(withLuaCommand(redis.client, 'keepIndexAlive'), 'writeCacheEntries');
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

  /**
   * The stored JSON per key, null where missing; undefined when L2 could not be read.
   *
   * The reads of every caller in this tick go as one MGET at its end (process.nextTick: before any I/O, so no
   * later than they would have gone alone). On a cold dashboard with Redis on, 38,733 reads of ~1 key each fell
   * into 9,786 ticks (bench/RESULTS.md, session 23). One promise a call, not one a key, as in the cross-request batcher.
   */
  getMany(keys: string[]): Promise<(string | null)[] | undefined> {
    if (keys.length === 0 || !this.redis.available) return Promise.resolve(undefined);
    let reads = this.reads;
    if (reads !== null && reads.keys.length >= MAX_KEYS_A_READ) {
      this.sendReads();
      reads = null;
    }
    if (reads === null) {
      reads = this.reads = { keys: [], callers: [] };
      process.nextTick(this.sendReads);
    }
    const from = reads.keys.length;
    for (const key of keys) reads.keys.push(key);
    return new Promise((resolve) => reads.callers.push({ from, to: reads.keys.length, resolve }));
  }

  /** One function for the tier's life, not a closure a tick. */
  private readonly sendReads = (): void => {
    const reads = this.reads;
    if (reads === null) return; // sent early, full
    this.reads = null;
    const { keys, callers } = reads;
    this.read(keys).then(
      (values) => {
        if (callers.length === 1) return callers[0]!.resolve(values);
        for (const c of callers) c.resolve(values?.slice(c.from, c.to));
      },
      () => {
        for (const c of callers) c.resolve(undefined);
      },
    );
  };

  private read(keys: string[]): Promise<(string | null)[] | undefined> {
    // On a cluster MGET may not span slots (each group is its own): one GET a key, pipelined per node by the client.
    return this.policy.execute(() => (this.redis.cluster ? Promise.all(keys.map((k) => this.redis.client.get(k))) : this.redis.client.mget(keys)));
  }

  /**
   * Fire-and-forget. The writes of a whole turn of the event loop go together when it ends (setImmediate): nobody
   * waits for them, and a cold dashboard's sources store at different ticks of the same turn (14,969 writes fell
   * into 6,606 turns, session 23). deleteGroups sends what is waiting first, so an invalidation
   * is never overtaken by a write stored before it.
   */
  setMany(writes: L2Write[]): void {
    if (writes.length === 0 || !this.redis.available) return;
    if (this.writes.length === 0) setImmediate(this.sendWrites);
    for (const w of writes) this.writes.push(w);
  }

  private readonly sendWrites = (): void => {
    const writes = this.writes;
    if (writes.length === 0) return;
    this.writes = [];
    // Bounded script calls: Redis runs a script alone, and a cold 500-user list stores 1,500 entries at once.
    for (let i = 0; i < writes.length; i += MAX_WRITES_A_CALL) this.write(writes.slice(i, i + MAX_WRITES_A_CALL));
  };

  private write(writes: L2Write[]): void {
    this.policy
      .execute((): Promise<unknown> => {
        if (this.redis.cluster) {
          // A cluster pipeline may not span nodes: a write's commands one by one (the index's TTL a one-key script),
          // which the client pipelines per node itself; not the batch script, whose keys span slots.
          const client = this.scripted;
          return Promise.all(writes.flatMap((w) => [client.set(w.key, w.json, 'PX', w.ttlMs), client.sadd(w.indexKey, w.key), client.keepIndexAlive(w.indexKey, w.ttlMs)]));
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
    // Writes still waiting for the end of the turn go first: on one connection Redis runs commands in order.
    this.sendWrites();
    try {
      await this.policy.execute(() => (this.redis.cluster ? this.deleteGroupsOnCluster(indexKeys) : this.redis.client.eval(DELETE_GROUPS, indexKeys.length, ...indexKeys)));
      return true;
    } catch {
      return false;
    }
  }
}
