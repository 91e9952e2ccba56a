import { circuitBreaker, ConsecutiveBreaker, handleAll, type CircuitBreakerPolicy } from 'cockatiel';
import { Cluster, Redis, type RedisOptions as IoRedisOptions } from 'ioredis';
import type { SentinelSettings } from './config-types.js';
import type { Logger } from './logger.js';
import { LineEvery } from './line-every.js';
import { halfOpenAfter } from './monotonic-breaker.js';
import { withoutPasswords } from './without-passwords.js';

/**
 * The one Redis connection of a process. Redis is an accelerator, never a
 * dependency: commands time out fast and are not queued while disconnected,
 * so a caller falls back (to local rate limits, to L1 only) at once;
 * ioredis reconnects on its own and `available` turns true again. Each change
 * of state is logged once, not once per failed command.
 */
/** One Redis or a Redis Cluster: the commands used here are the same on both. */
export type RedisClient = Redis | Cluster;

/** Where Redis is: a URL, or a cluster's seed nodes (REDIS_CLUSTER_NODES). */
export interface RedisLocation {
  url: string;
  clusterNodes?: { host: string; port: number }[] | undefined;
  /** Redis behind Sentinel: the master is asked of these, by name (`url` then has the servers' scheme and credentials). */
  sentinels?: SentinelSettings | undefined;
}

/** A Lua script sent as a command of its own name (ioredis' defineCommand): how many of its arguments are keys (none given: the caller's first argument says). */
export interface LuaCommand {
  numberOfKeys?: number;
  lua: string;
}

/** Every Lua command a module declared (declareLuaCommand), defined on each client as it is made. */
const luaCommands: Record<string, LuaCommand> = {};

/**
 * Declares a Lua command, once, when its module loads: every client
 * newRedisClient makes has it from the start (ioredis' `scripts` option).
 * Defined later, on first use, it crashed an auto-pipelining client (a
 * cluster's): ioredis copies a client's commands into a pipeline when it
 * makes one, so a command defined after another of the same tick opened the
 * pipeline was missing from it, the pipeline answered one reply short, and
 * ioredis threw outside any promise (ioredis #1931), ending the process.
 */
export function declareLuaCommand(name: string, command: LuaCommand): void {
  luaCommands[name] = command;
}

/**
 * The client, typed as having the declared command `name`. A client made
 * elsewhere (a test's own) gets it defined now; one that auto-pipelines must
 * have had it from the start (see declareLuaCommand), so its absence there is
 * an error, not a crash later.
 */
export function withLuaCommand<T extends RedisClient>(client: RedisClient, name: string): T {
  if (!(name in client)) {
    const command = luaCommands[name];
    if (!command) throw new Error(`Lua command ${name} was never declared (declareLuaCommand)`);
    if (client.options.enableAutoPipelining) throw new Error(`Lua command ${name} was declared after this auto-pipelining Redis client was made`);
    client.defineCommand(name, command);
  }
  return client as T;
}

/**
 * A connection with a command out that has had no byte back for this long is
 * destroyed and opened again (ioredis' `socketTimeout`). A connection can go
 * silent without a FIN or a reset: Redis moved to another address (a
 * Kubernetes pod rescheduled, a managed failover), a NAT or a firewall that
 * forgot it. Nothing then ends it until TCP gives up on the unacknowledged
 * data, about 15 minutes on Linux (ioredis#559, OpenCTI#7970): every command
 * on it timed out, the live-event reader's XREAD waited, and a subscriber
 * heard nothing. A Redis that answers takes well under this for any command
 * we send.
 */
export const SILENT_CONNECTION_MS = 5000;

/** The silence allowed on a connection whose commands may block up to `blockMs` before answering. */
export function silentAfterBlocking(blockMs: number): number {
  return blockMs + SILENT_CONNECTION_MS;
}

/** The longest bullmq's workers block on their connection (its `maximumBlockTimeout`, 10 s; `drainDelay` 5 s). */
const BULLMQ_BLOCK_MS = 10_000;

/**
 * A client for one Redis or for a Redis Cluster (ioredis' Cluster, with the
 * same per-node options), with every declared Lua command. On a cluster,
 * commands to one node are pipelined together automatically, so callers send
 * single-key commands and never a multi-key one across slots.
 */
export function newRedisClient(where: RedisLocation, given: IoRedisOptions = {}): RedisClient {
  // Unless the caller knows its connection never blocks, allow the longest block it might make (bullmq's).
  const options = { socketTimeout: silentAfterBlocking(BULLMQ_BLOCK_MS), reconnectOnError: onErrorReply, ...given };
  const scripts = { ...luaCommands, ...options.scripts };
  if (!where.clusterNodes) {
    const client = where.sentinels ? new Redis({ ...options, scripts, ...behindSentinels(where.url, where.sentinels) }) : new Redis(where.url, { ...options, scripts });
    clientByOptions.set(client.options, client);
    client.on('ready', () => readyAt.set(client.options, performance.now()));
    return pingedWhileOpen(client);
  }
  const { enableOfflineQueue, ...perNode } = options;
  const reach = seedReach(where.url);
  const cluster = new Cluster(where.clusterNodes, {
    redisOptions: { ...perNode, ...reach.perNode },
    ...(reach.tls ? { dnsLookup: keepHostName } : {}),
    ...(enableOfflineQueue === undefined ? {} : { enableOfflineQueue }),
    enableAutoPipelining: true,
    scripts,
    clusterRetryStrategy: (times) => Math.min(100 * times, 2000),
  });
  // What a node's replies say is the cluster's to tell (a node is made for each master as it is found).
  cluster.on('+node', (node: Redis) => clientByOptions.set(node.options, cluster));
  return pingedWhileOpen(cluster);
}

/**
 * How every Redis server of a cluster or behind sentinels is reached, from the seed URL (REDIS_CLUSTER_NODES,
 * REDIS_SENTINELS): its user and password (AUTH on each, the ones discovered included) and, for rediss:, TLS.
 */
function seedReach(url: string): { perNode: Pick<IoRedisOptions, 'username' | 'password' | 'tls'>; tls: boolean } {
  if (!URL.canParse(url)) return { perNode: {}, tls: false };
  const seed = new URL(url);
  const tls = seed.protocol === 'rediss:';
  return {
    perNode: {
      ...(seed.username ? { username: decodeURIComponent(seed.username) } : {}),
      ...(seed.password ? { password: decodeURIComponent(seed.password) } : {}),
      ...(tls ? { tls: {} } : {}),
    },
    tls,
  };
}

/**
 * The options of a client of Redis behind Sentinel: the sentinels to ask for the master (and, told of a failover
 * by them, to ask again: `failoverDetector`), the servers' credentials from the seed URL, and TLS to both for rediss:.
 */
function behindSentinels(url: string, sentinels: SentinelSettings): IoRedisOptions {
  const reach = seedReach(url);
  return {
    sentinels: sentinels.nodes,
    name: sentinels.master,
    ...(sentinels.password ? { sentinelPassword: sentinels.password } : {}),
    failoverDetector: true,
    ...reach.perNode,
    // rediss: names the sentinels' addresses: TLS to them (sentinelTLS), and to the servers they name.
    ...(reach.tls ? { sentinelTLS: {}, enableTLSForSentinelMode: true } : {}),
  };
}

/**
 * A cluster over TLS connects to each node by the name it has, not an address ioredis looked up: the certificate
 * names the host (ioredis' advice for ElastiCache with TLS).
 */
const keepHostName = (address: string, callback: (error: null, address: string) => void) => callback(null, address);

/** How long after the main connection opens Redis is asked whether it took this process's other connections. */
const FULL_HOUSE_CHECK_MS = 2000;

/** How long behind sentinels a closed connection has to reach a master again before it is said to be unreachable. */
const SENTINEL_FAILOVER_GRACE_MS = 2000;

/** Emitted on a client (the standalone kind) when a write was answered READONLY and its connection is opened again. */
export const REPLICA_ANSWER_EVENT = 'replicaAnswer';
/** Emitted on a client (a cluster too, for any of its nodes) when Redis refused a write for want of memory or of a disk to save to. */
export const WRITES_REFUSED_EVENT = 'writesRefused';

/**
 * Writes refused while the connection is fine and reads answer: `OOM` (maxmemory reached under `noeviction`, the
 * policy bullmq needs) and `MISCONF` (a snapshot could not be saved, stop-writes-on-bgsave-error).
 */
const REFUSED_WRITE = /^(OOM|MISCONF) /;

/** Redis refusing the password or user REDIS_URL names (ACL and `requirepass` alike; Redis before 6 says "invalid password"). */
const REFUSED_CREDENTIALS = /^(WRONGPASS|NOAUTH)|invalid password/;

/** A connection answered READONLY is opened again at most this often: REDIS_URL naming a replica must not make every write a new connection. */
const REPLICA_RECONNECT_EVERY_MS = 1000;

/** When each connection (by its options object, which ioredis makes per client, duplicates included) last reconnected on a READONLY. */
const replicaReconnects = new WeakMap<object, number>();
/** When each connection newRedisClient made (by its options object) was last ready: whether a reconnect is still under way. */
const readyAt = new WeakMap<object, number>();
/** The client each standalone connection's options belong to, so what its replies say can be told to it. */
const clientByOptions = new WeakMap<object, RedisClient>();

/**
 * ioredis' `reconnectOnError`, called with the connection's options as `this`
 * on every error reply: what the connection should do about it.
 *
 * READONLY: a write came to a replica. After a failover (ElastiCache, Azure,
 * Sentinel behind one name) the old primary becomes a replica and connections
 * open to it stay there: every write on them is refused, forever, while the
 * connection itself is fine. Opened again through the same name, the
 * connection reaches the new primary; the refused command is sent again there
 * where the client queues commands while it connects (the live log's,
 * bullmq's workers), and fails with the READONLY where it does not (the main
 * connection, the queue's: its caller falls back). At most once a
 * REPLICA_RECONNECT_EVERY_MS a connection: a READONLY meanwhile is sent again
 * too while that reconnect is under way (commands in flight together), and
 * just fails once it has been made (still a replica).
 *
 * OOM, MISCONF: nothing a connection can change; told to the client
 * (WRITES_REFUSED_EVENT), since every caller falls back without a word.
 */
function onErrorReply(this: { enableOfflineQueue?: boolean }, error: Error): boolean | 2 {
  if (REFUSED_WRITE.test(error.message)) {
    clientByOptions.get(this)?.emit(WRITES_REFUSED_EVENT, error);
    return false;
  }
  if (!error.message.startsWith('READONLY')) return false;
  const now = performance.now();
  const last = replicaReconnects.get(this) ?? -Infinity;
  if (now - last < REPLICA_RECONNECT_EVERY_MS) {
    // Sent before the reconnect under way and refused too (commands in flight together): sent again once it is made,
    // where commands wait for that. Once it has been made, a refusal within the second just fails (still a replica).
    const reconnecting = (readyAt.get(this) ?? Infinity) < last;
    return reconnecting && this.enableOfflineQueue !== false ? 2 : false;
  }
  replicaReconnects.set(this, now);
  // A cluster's node reconnects on its own; the cluster as a whole stays up, so its state is not the one to change.
  const client = clientByOptions.get(this);
  if (client instanceof Redis) client.emit(REPLICA_ANSWER_EVENT, error);
  // 2: sent again once connected, so only where commands wait for that; elsewhere it would fail as "not writeable".
  return this.enableOfflineQueue === false ? true : 2;
}

/**
 * A PING on each of the client's connections every SILENT_CONNECTION_MS: `socketTimeout` finds a silent connection
 * only when something is sent on it, so an idle one (a subscriber, a queue between writes, a quiet night) would
 * cost the next real command its silence. Pinged, it is found and opened again meanwhile.
 */
function pingedWhileOpen<C extends RedisClient>(client: C): C {
  const timer = setInterval(() => {
    for (const connection of client instanceof Cluster ? client.nodes('all') : [client]) {
      if (connection.status === 'ready') connection.ping().catch(() => undefined);
    }
  }, SILENT_CONNECTION_MS).unref();
  client.once('end', () => clearInterval(timer));
  return client;
}

/** The key prefix a bullmq queue takes: on a cluster one hash tag, so each queue's keys (and its Lua scripts) share a slot. */
export function queuePrefix(where: RedisLocation, prefix: string): string {
  return where.clusterNodes ? `{${prefix}}` : prefix;
}

/** Redis in use; or away; or answering without taking our credentials; or answering reads and refusing writes. */
export type RedisState = 'ok' | 'unreachable' | 'credentials refused' | 'refusing writes';

/** What each state but 'ok' means for this instance, as /readyz's `degraded` says it. */
export const REDIS_DEGRADED: Record<Exclude<RedisState, 'ok'>, string> = {
  unreachable: 'redis: unreachable; serving from the L1 cache with per-instance rate limits',
  'credentials refused':
    'redis: refuses the credentials it was given (REDIS_URL, or the seeds of REDIS_CLUSTER_NODES or REDIS_SENTINELS); serving from the L1 cache with per-instance rate limits',
  'refusing writes': 'redis: refusing writes (out of memory, or unable to save); L2 keeps nothing new, rate limits are per instance, deliveries stay in memory',
};

/** A refused write keeps the state 'refusing writes' this long: under load something writes every second, so it ends soon after Redis takes writes again. */
const WRITES_REFUSED_SHOWN_MS = 30_000;

export interface RedisOptions extends RedisLocation {
  keyPrefix: string;
  /** A command slower than this is treated as Redis being unavailable (default 1 s: a dead Redis shows as a closed connection at once; this catches a hung one without mistaking event-loop lag under load for an outage). */
  commandTimeoutMs?: number;
}

export class RedisConnection {
  readonly client: RedisClient;
  /** A Redis Cluster: multi-key commands must stay within one slot. */
  readonly cluster: boolean;
  readonly keyPrefix: string;
  private up = false;
  private everUp = false;
  /** The connection is being opened again because a replica answered (REPLICA_ANSWER_EVENT): not an outage. */
  private replicaReconnect = false;
  /** What the connection last met since it was ready: the cause an outage's line names. */
  private lastError: string | undefined;
  /** Redis refused our credentials since the connection was last ready (said once). */
  private credentialsRefused = false;
  private readonly fullHouseLines = new LineEvery(60_000);
  /** When Redis last refused a write (WRITES_REFUSED_EVENT). */
  private writesRefusedAt = -Infinity;
  /** The address the connection last reached (behind sentinels: the master they named). */
  private masterAt: string | undefined;
  /** Behind sentinels: the "unreachable" line, held while a failover may be under way (SENTINEL_FAILOVER_GRACE_MS). */
  private unreachableLine: NodeJS.Timeout | undefined;

  constructor(
    private readonly options: RedisOptions,
    private readonly logger: Logger,
  ) {
    this.keyPrefix = options.keyPrefix;
    this.cluster = options.clusterNodes !== undefined;
    this.client = newRedisClient(options, {
      connectionName: 'gateway:main',
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.commandTimeoutMs ?? 1000,
      socketTimeout: SILENT_CONNECTION_MS,
      connectTimeout: 1000,
      retryStrategy: (times) => Math.min(100 * times, 2000),
      lazyConnect: false,
    });
    const where = options.sentinels ? `master ${options.sentinels.master} of the sentinels at ${withoutPasswords(options.url)}` : withoutPasswords(options.url);
    this.client.on('ready', () => {
      this.lastError = undefined;
      this.credentialsRefused = false;
      const at = remoteAddress(this.client);
      const held = this.unreachableLine !== undefined;
      clearTimeout(this.unreachableLine);
      this.unreachableLine = undefined;
      // However the move was noticed: the sentinels' announcement, the old master's READONLY, or a master gone.
      if (options.sentinels && this.everUp && at !== this.masterAt)
        logger.warn({ redis: where, master: at, was: this.masterAt }, 'Redis failed over: the sentinels name another master, in use now');
      else if (!held && !this.up && !this.replicaReconnect) logger.info({ redis: where }, this.everUp ? 'Redis is back: shared state in use again' : 'Redis connected');
      if (!this.everUp) void this.warnOfWhatRedisMayLose(where);
      // Once this process's other connections have had their turn to open.
      setTimeout(() => void this.warnIfFullHouse(where), FULL_HOUSE_CHECK_MS).unref();
      this.masterAt = at;
      this.up = true;
      this.everUp = true;
      this.replicaReconnect = false;
    });
    const sayUnreachable = () =>
      logger.warn({ redis: where, err: this.lastError }, 'Redis unreachable: falling back to local state (rate limits per instance, L1 cache only) until it returns');
    this.client.on('close', () => {
      if (this.up && !this.replicaReconnect) {
        // Behind sentinels, a close is also how a failover begins (ioredis' failoverDetector ends the connection when
        // they announce a new master): said as what it was once the next master answers, unreachable only if none does.
        if (options.sentinels) {
          this.unreachableLine = setTimeout(() => {
            this.unreachableLine = undefined;
            sayUnreachable();
          }, SENTINEL_FAILOVER_GRACE_MS);
          this.unreachableLine.unref();
        } else sayUnreachable();
      }
      this.up = false;
    });
    const replicaLines = new LineEvery(60_000);
    this.client.on(REPLICA_ANSWER_EVENT, (error: Error) => {
      this.replicaReconnect = true;
      const reconnects = replicaLines.due();
      if (reconnects === null) return;
      logger.warn(
        { redis: where, err: error.message, reconnects },
        'Redis answered as a read-only replica (a failover moved the primary, or REDIS_URL names a replica): connecting again to reach the primary; writes to Redis fail until then',
      );
    });
    const refusedLines = new LineEvery(60_000);
    this.client.on(WRITES_REFUSED_EVENT, (error: Error) => {
      this.writesRefusedAt = performance.now();
      const refused = refusedLines.due();
      if (refused === null) return;
      logger.warn(
        { redis: where, err: error.message, refused },
        'Redis refuses writes: L2 keeps nothing new, rate limits are per instance, deliveries stay in memory and webhooks are refused for the vendor to send again, until it takes writes again (free memory or raise maxmemory for OOM; fix the disk for MISCONF)',
      );
    });
    // Errors surface as state changes (with the last one as their cause) and as each caller's fallback; ioredis keeps
    // retrying. Credentials refused are a setting to fix, not an outage to wait out: said once, at error level.
    this.client.on('error', (error: Error) => {
      // A cluster that no seed answered says so, and keeps what the last one said.
      const { lastNodeError } = error as { lastNodeError?: unknown };
      const cause = lastNodeError instanceof Error ? lastNodeError : error;
      this.lastError = cause.message;
      if (!REFUSED_CREDENTIALS.test(cause.message) || this.credentialsRefused) return;
      this.credentialsRefused = true;
      logger.error(
        { redis: where, err: cause.message },
        'Redis refuses our credentials: fix the user or password in REDIS_URL (or the seeds of REDIS_CLUSTER_NODES or REDIS_SENTINELS); running on local state (rate limits per instance, L1 cache only) until it takes them',
      );
    });
    // A Redis that never answers (a wrong REDIS_URL) must not go unnoticed.
    setTimeout(() => {
      if (!this.everUp && !this.credentialsRefused)
        logger.warn({ redis: where, err: this.lastError }, 'Redis not reachable since start: running on local state (rate limits per instance, L1 cache only) until it is');
    }, 3000).unref();
  }

  /**
   * One warn line each for what Redis may lose without a word, read once it is first ready: what is kept only there
   * (queued deliveries, the webhook inbox, live events, idempotency records).
   * - It may evict any key to make room (maxmemory-policy allkeys-*), or any that expires (volatile-*: idempotency
   *   records, webhook ids, job locks): lost under memory pressure. Read from INFO, which managed Redis answers where
   *   it disables CONFIG.
   * - It keeps nothing on disk (no RDB snapshot schedule, AOF off): lost at its next restart. The schedule is only
   *   in CONFIG; where CONFIG is refused (managed Redis, which persists on its own terms) nothing is said.
   */
  private async warnOfWhatRedisMayLose(where: string): Promise<void> {
    const memory = await this.client.info('memory').catch(() => '');
    const policy = /^maxmemory_policy:(\S+)/m.exec(memory)?.[1];
    if (policy?.startsWith('allkeys-')) {
      this.logger.warn(
        { redis: where, maxmemoryPolicy: policy },
        'Redis evicts any key when full (maxmemory-policy ' +
          policy +
          '): queued deliveries, webhook events, live events and idempotency records kept there can be lost under memory pressure; set noeviction (cache entries expire on their own)',
      );
    } else if (policy?.startsWith('volatile-')) {
      // Managed Redis' usual default (ElastiCache, Azure, Memorystore): only keys that expire go, but ours that do are
      // the ones that keep a write or an event from running twice.
      this.logger.warn(
        { redis: where, maxmemoryPolicy: policy },
        'Redis evicts keys that expire when full (maxmemory-policy ' +
          policy +
          "): idempotency records, webhook event ids and the delivery queue's job locks kept there can be lost under memory pressure, so a repeated write or event may run twice; set noeviction (cache entries expire on their own)",
      );
    }
    if (await this.keepsNothingOnDisk()) {
      this.logger.warn(
        { redis: where },
        'Redis keeps nothing on disk (no RDB snapshots, AOF off): queued deliveries, webhook events and idempotency records kept there are lost when it restarts; turn on appendonly (appendfsync everysec) or an RDB save schedule',
      );
    }
  }

  /**
   * One warn line (a minute at most) when Redis has as many clients as its maxclients allows: it takes no new
   * connection, and this process's others (the delivery queue's, the live events', the invalidations') stay shut
   * while this one is open. Managed Redis tiers allow as few as 30; each process opens about 7.
   */
  private async warnIfFullHouse(where: string): Promise<void> {
    const clients = await this.client.info('clients').catch(() => '');
    const connected = Number(/^connected_clients:(\d+)/m.exec(clients)?.[1]);
    const max = Number(/^maxclients:(\d+)/m.exec(clients)?.[1]);
    if (!(max > 0 && connected >= max) || this.fullHouseLines.due() === null) return;
    this.logger.warn(
      { redis: where, connectedClients: connected, maxclients: max },
      "Redis takes no more connections (connected_clients is its maxclients): this process's other connections to it stay shut, so deliveries stay in memory and live events and invalidations do not cross instances; raise maxclients, or lower WORKERS or instances (each process opens about 7)",
    );
  }

  /** Whether Redis says it saves no snapshots and keeps no AOF; false where it will not say (CONFIG refused). */
  private async keepsNothingOnDisk(): Promise<boolean> {
    const read = async (name: string): Promise<string | undefined> => {
      const reply = (await this.client.config('GET', name)) as unknown;
      return Array.isArray(reply) && typeof reply[1] === 'string' ? reply[1] : undefined;
    };
    try {
      const [save, appendonly] = [await read('save'), await read('appendonly')];
      return save === '' && appendonly === 'no';
    } catch {
      return false;
    }
  }

  get available(): boolean {
    return this.up && this.client.status === 'ready';
  }

  /** Whether Redis is in use, or why not wholly: what /readyz and the status page say of it. */
  get state(): RedisState {
    if (this.credentialsRefused) return 'credentials refused';
    if (!this.available) return 'unreachable';
    if (performance.now() - this.writesRefusedAt < WRITES_REFUSED_SHOWN_MS) return 'refusing writes';
    return 'ok';
  }

  /** Another connection to the same Redis or cluster (a subscriber: a connection in subscribe mode takes no other command). */
  newClient(options: IoRedisOptions): RedisClient {
    return newRedisClient(this.options, options);
  }

  key(...parts: string[]): string {
    return this.keyPrefix + parts.join(':');
  }

  async close(): Promise<void> {
    clearTimeout(this.unreachableLine);
    this.client.removeAllListeners('close');
    await this.client.quit().catch(() => this.client.disconnect());
  }
}

/** Where a connection reached, `host:port` (a cluster's connections are many: none). */
function remoteAddress(client: RedisClient): string | undefined {
  const socket = client instanceof Redis ? (client.stream as { remoteAddress?: string; remotePort?: number } | undefined) : undefined;
  return socket?.remoteAddress === undefined ? undefined : `${socket.remoteAddress}:${socket.remotePort}`;
}

/** How a Redis call with a local fallback is made (see optionalRedisPolicy). */
export interface RedisCallPolicy {
  execute<T>(call: () => Promise<T>): Promise<T>;
}

/**
 * For Redis calls that have a local fallback (L2 cache, caller limits): each
 * bounded by a short timeout, and five failures in a row open a breaker that
 * skips Redis for 2 s — so a hung Redis (connection open, no answers) costs
 * a few requests one timeout each, then nothing.
 */
export function optionalRedisPolicy(timeoutMs: number): { policy: RedisCallPolicy; breaker: CircuitBreakerPolicy } {
  const breaker = circuitBreaker(handleAll, { halfOpenAfter: halfOpenAfter(2000), breaker: new ConsecutiveBreaker(5) });
  return { policy: { execute: (call) => breaker.execute(() => within(timeoutMs, call)) }, breaker };
}

/**
 * The call's answer, or a rejection once `ms` have passed without one. A
 * plain timer: cockatiel's TimeoutPolicy, which this replaces here, made an
 * AbortController and its listeners for every command, which no Redis caller
 * reads (~4 % of a cold dashboard's CPU with Redis on, bench/RESULTS.md,
 * session 22).
 */
function within<T>(ms: number, call: () => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Redis did not answer within ${ms} ms`)), ms);
    call().then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
