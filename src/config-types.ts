/**
 * The shapes of the configuration that modules below the entry point need:
 * types only, at the bottom of the import graph, so resilience, sources,
 * logging and writes take their settings without importing the loader
 * (`config.ts`, which reads the environment and sits near the top).
 */

/** Every per-source policy setting; `<SOURCE>_<SETTING>` in the environment (see SOURCE_SETTINGS). */
export interface SourceTuning {
  /** Per-attempt timeout for one upstream HTTP call (capped by what is left of the request's deadline). */
  timeoutMs: number;
  /** Time to open a connection (TCP and TLS) to the upstream. */
  connectTimeoutMs: number;
  /** Keep-alive connections in the undici pool for this origin. */
  connections: number;
  /**
   * The longest an idle connection to the upstream is kept for the next call; the vendor's `Keep-Alive: timeout`
   * shortens it. Under the vendor's own idle timeout, no call meets a connection it has closed.
   */
  keepAliveMs: number;
  /**
   * The largest answer read from this origin, in bytes: a larger one is cut off
   * as it streams in and fails as SOURCE_BAD_RESPONSE, before it fills the heap.
   */
  maxResponseBytes: number;
  /** Attempts in all (1 = no retry) for transient failures. */
  retryMaxAttempts: number;
  /** Exponential backoff base, with full jitter. */
  retryBaseDelayMs: number;
  retryMaxDelayMs: number;
  /** The breaker opens when this share of calls fails within the window... */
  breakerFailureRatio: number;
  breakerWindowMs: number;
  /** ...and at least this many calls were made in it. */
  breakerMinCalls: number;
  /** Open → half-open (one probe) after this long. */
  breakerHalfOpenAfterMs: number;
  /** Concurrent calls to this upstream, and calls waiting for a slot. */
  bulkheadLimit: number;
  bulkheadQueue: number;
  /** Our token bucket for this upstream; set it below the vendor's limit. */
  rateLimitPerSec: number;
  rateLimitBurst: number;
}

/** What the people running it set: auth, client limits, exposure, shutdown. */
export interface OpsConfig {
  auth: {
    /** RS256/ES256 tokens verified against this JWKS (cached, refreshed on an unknown key id); else HS256 with the secret. */
    jwksUrl: string | undefined;
    issuer: string | undefined;
    audience: string | undefined;
    clockToleranceSec: number;
  };
  /** Origins browsers may call from; empty: no CORS headers (same origin only). */
  corsOrigins: string[];
  /** gzip/brotli by Accept-Encoding for responses of at least `thresholdBytes`; off: `null`. */
  compression: { thresholdBytes: number } | null;
  /** When new GraphQL requests are refused with 503 (src/http/load-shedding.ts). */
  loadShedding: { maxInFlight: number; maxEntityReads: number; maxEventLoopDelayMs: number; maxHeapUsedRatio: number };
  /** When new GraphQL requests wait in line for room, and for how long at most (src/http/admission-queue.ts). */
  admission: { queueAtEntityReads: number; maxWaitMs: number };
  /**
   * How long an idle client connection is kept for its next request (HTTP_KEEP_ALIVE_MS): longer than a load
   * balancer in front keeps its own, or it sends requests on connections being closed.
   */
  httpKeepAliveMs: number;
  /** MAX_CLIENT_CONNECTIONS; null: derived from the open-file limit (src/http/client-connections.ts). */
  maxClientConnections: number | null;
  limits: { maxDepth: number; maxCost: number; maxAliases: number; maxTokens: number; maxDirectives: number; maxBodyBytes: number; requestTimeoutMs: number; batching: boolean };
  graphiql: boolean;
  introspection: boolean;
  /** Only operations in the allow-list made from examples/ are run. */
  persistedOperationsRequired: boolean;
  /** Automatic persisted queries (the APQ protocol). */
  apq: boolean;
  /** Per caller (token subject), over all its requests; shared through Redis when configured. */
  callerRateLimit: { perSec: number; burst: number };
  /** Live subscriptions one caller may hold on one instance (SSE and WebSocket together). */
  subscriptionsPerCaller: number;
  /** notificationAdded events held for a subscriber that is not reading; one more ends its subscription (OVERLOADED). */
  subscriptionHeldEventsMax: number;
  /** LIVE_EVENTS_KEPT: with Redis, about how many live events its stream keeps for an instance that was away. */
  liveEventsKept: number;
  /** What subscription events read again is collected this long and read as one batch. */
  subscriptionReadWindowMs: number;
  /** An event stream whose client took none of the data waiting for it this long is cut (SUBSCRIPTION_STALLED_CUT_MS). */
  subscriptionStalledCutMs: number;
  /** A source whose success rate over the last minute falls below this is logged (and again when it recovers). */
  sourceSuccessRateWarn: number;
  /** On SIGTERM/SIGINT: how long in-flight requests may take to finish. */
  shutdownGraceMs: number;
}

export interface WritesConfig {
  /** Attempts per secondary delivery in all, the first included; then it is dead-lettered. */
  deliveryMaxAttempts: number;
  deliveryBackoffMs: number;
  deliveryConcurrency: number;
  /** A delivery whose worker died is taken up again after this long. */
  deliveryStalledAfterMs: number;
  /** How long an idempotency key and its payload are kept. */
  idempotencyTtlMs: number;
  /** What a write dropped is dropped again this long after (0: once): the vendor's reads may lag its writes. */
  settleMs: number;
}

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** The proxy vendors are called through: a forward proxy's URL per scheme of the vendor, and who is reached directly. */
export interface ProxySettings {
  /** For http:// vendors, and https:// ones when `https` is unset. */
  http: string | undefined;
  /** For https:// vendors (a CONNECT tunnel). */
  https: string | undefined;
  /** NO_PROXY's list: `host`, `.domain`, `host:port`, `*`, comma-separated. */
  noProxy: string;
}

/** Where shared state lives; null: this instance keeps its own. */
export interface RedisSettings {
  /** The node (single Redis), or the first seed node of a cluster, with the scheme and credentials every node is reached with. */
  url: string;
  keyPrefix: string;
  /** REDIS_CLUSTER_NODES: a Redis Cluster, reached through these seed nodes. */
  clusterNodes?: { host: string; port: number }[];
  /** REDIS_SENTINELS: Redis behind Sentinel, its master asked of these sentinels by name; `url` has the servers' credentials. */
  sentinels?: SentinelSettings;
}

export interface SentinelSettings {
  nodes: { host: string; port: number }[];
  /** The name they monitor the master under. */
  master: string;
  /** The sentinels' own password. */
  password?: string;
}

/** What the write path needs of the configuration. */
export interface WritesSettings {
  writes: WritesConfig;
  redis: RedisSettings | null;
  /** One deadline for all the upstream work of a GraphQL request. */
  requestDeadlineMs: number;
}

/** How a source's changes are found: pulled from the vendor's filter every interval, by hashing what the cache refreshes, or not at all. */
export interface ChangeFeedSettings {
  mode: 'pull' | 'hash' | 'off';
  intervalMs: number;
  /** How far before its mark each pull looks again (CHANGE_FEED_OVERLAP_MS); OVERLAP_MS_DEFAULT when not given. */
  overlapMs?: number;
}

/**
 * A pull looks again this far before the latest change it applied: a vendor's
 * search index is eventually consistent (Auth0's is), so a change can be listed
 * after a later one, under its own earlier `updated_at`.
 */
export const CHANGE_FEED_OVERLAP_MS_DEFAULT = 10_000;
