import { z } from 'zod';
import { defaultCacheConfig, type CacheConfig, type EntityPolicy } from './cache/policy.js';
import { defaultEntityPolicies, ENTITY_SETTINGS, SOURCE_NAMES, SOURCES, type UpstreamEndpoints } from './sources/registry.js';
import type { SourceName } from './errors.js';
import {
  CHANGE_FEED_OVERLAP_MS_DEFAULT,
  type ChangeFeedSettings,
  type LogLevel,
  type OpsConfig,
  type ProxySettings,
  type RedisSettings,
  type SourceTuning,
  type WritesConfig,
} from './config-types.js';
import { containerLimits, defaultWorkers, memoryShortfall } from './container-limits.js';
import { withoutPasswords } from './without-passwords.js';

export type { ChangeFeedSettings, LogLevel, OpsConfig, SourceTuning, WritesConfig } from './config-types.js';
export type { UpstreamEndpoints } from './sources/registry.js';
export { SOURCE_NAMES };

/**
 * Every setting, typed and validated. Environment variables are the interface;
 * `loadConfig` reads nothing else. A bad value stops the start with a message
 * naming the variable.
 */

type Setting = { key: keyof SourceTuning; min: number; max: number; integer: boolean; default: number; doc: string };

/** Env suffix → setting, bounds and default per source. */
export const SOURCE_SETTINGS: Record<string, Setting> = {
  TIMEOUT_MS: { key: 'timeoutMs', min: 1, max: 600_000, integer: true, default: 1000, doc: 'per-attempt timeout, capped by the deadline left' },
  CONNECT_TIMEOUT_MS: { key: 'connectTimeoutMs', min: 1, max: 600_000, integer: true, default: 1000, doc: 'time to open a connection (TCP and TLS) to the vendor' },
  CONNECTIONS: { key: 'connections', min: 1, max: 1024, integer: true, default: 32, doc: "keep-alive connections in that origin's pool" },
  KEEP_ALIVE_MS: {
    key: 'keepAliveMs',
    min: 100,
    max: 600_000,
    integer: true,
    default: 30_000,
    doc: "the longest an idle connection to the vendor is kept for the next call (a `Keep-Alive: timeout` from the vendor shortens it); set it under the vendor's own idle timeout when the log says the vendor closes idle connections",
  },
  MAX_RESPONSE_BYTES: {
    key: 'maxResponseBytes',
    min: 1024,
    max: 1024 * 1024 * 1024,
    integer: true,
    // The largest answer UPSTREAMS.md allows, hourly metrics for 31 days of 100 users, is 3.4 MB from the simulator.
    default: 16 * 1024 * 1024,
    doc: 'the largest answer read from the vendor; a larger one is cut off as it arrives and fails as `SOURCE_BAD_RESPONSE`',
  },
  RETRY_MAX_ATTEMPTS: { key: 'retryMaxAttempts', min: 1, max: 10, integer: true, default: 3, doc: 'attempts in all for a transient failure (`1`: no retry)' },
  RETRY_BASE_DELAY_MS: { key: 'retryBaseDelayMs', min: 1, max: 60_000, integer: true, default: 100, doc: 'backoff base: a random wait in [0, min(max, base·2ⁿ)]' },
  RETRY_MAX_DELAY_MS: { key: 'retryMaxDelayMs', min: 1, max: 600_000, integer: true, default: 2000, doc: 'backoff ceiling (at least the base)' },
  BREAKER_FAILURE_RATIO: {
    key: 'breakerFailureRatio',
    min: 0.01,
    max: 1,
    integer: false,
    default: 0.5,
    doc: 'the breaker opens when more than this share of the calls in its window failed (1: when all did)',
  },
  BREAKER_WINDOW_MS: { key: 'breakerWindowMs', min: 1000, max: 600_000, integer: true, default: 10_000, doc: 'window the ratio is measured over' },
  BREAKER_MIN_CALLS: { key: 'breakerMinCalls', min: 1, max: 100_000, integer: true, default: 10, doc: 'calls needed in the window before it can open' },
  BREAKER_HALF_OPEN_AFTER_MS: { key: 'breakerHalfOpenAfterMs', min: 100, max: 600_000, integer: true, default: 5000, doc: 'open → one probe after this long' },
  BULKHEAD_LIMIT: { key: 'bulkheadLimit', min: 1, max: 10_000, integer: true, default: 64, doc: 'concurrent calls to the vendor' },
  BULKHEAD_QUEUE: { key: 'bulkheadQueue', min: 0, max: 100_000, integer: true, default: 1000, doc: 'calls waiting for a slot; more fail fast' },
  RATE_LIMIT_PER_SEC: {
    key: 'rateLimitPerSec',
    min: 0.1,
    max: 100_000,
    integer: false,
    default: 40,
    doc: "the ceiling of our rate; under it the source learns the vendor's real limit from 429s and rate-limit headers",
  },
  RATE_LIMIT_BURST: { key: 'rateLimitBurst', min: 1, max: 100_000, integer: true, default: 4, doc: 'tokens saved up at the ceiling (scaled down with the learned rate)' },
};

export interface Config {
  production: boolean;
  host: string;
  port: number;
  logLevel: LogLevel;
  /** Server processes on one port (node:cluster); 1: this process serves. */
  workers: number;
  /** Why production's default WORKERS is under the core count (the container's CPU quota or memory limit); null otherwise. */
  workersLimitedBy: string | null;
  /** In production: the container's memory limit leaves each worker too little (src/container-limits.ts); null when not. */
  workersMemoryShortfall: string | null;
  /** LOG_BUFFER_MAX_BYTES: what the log holds for a stdout not read, at most. */
  logBufferMaxBytes: number;
  /** WORKER_STALL_TIMEOUT_MS: a worker silent this long is killed and replaced by the primary; 0: never. */
  workerStallTimeoutMs: number;
  /** The proxy vendors are called through (HTTP_PROXY, HTTPS_PROXY, NO_PROXY); null: straight to them. */
  proxy: ProxySettings | null;
  /** OpenTelemetry export, when OTEL_EXPORTER_OTLP_ENDPOINT is set. */
  tracing: { endpoint: string; serviceName: string } | null;
  /** HS256 secret for incoming tokens; undefined outside production means "make one and print a token". */
  jwtSecret: string | undefined;
  tuning: Record<SourceName, SourceTuning>;
  /** One deadline for all the upstream work of a GraphQL request. */
  requestDeadlineMs: number;
  /** Shared rate limits, the L2 cache and its invalidation when set; local otherwise. */
  redis: RedisSettings | null;
  cache: CacheConfig;
  writes: WritesConfig;
  ops: OpsConfig;
  /** null: no upstream is configured, run the simulated ones in process (never in production). */
  upstreams: UpstreamEndpoints | null;
  /** Per source that pushes events, its webhook signing secret (`whsec_…`); a source without one has no receiver. */
  webhookSecrets: Partial<Record<SourceName, string>>;
  /** After a vendor event, its entries are dropped again and its re-read signals sent again this long after (0: once). */
  webhookSettleMs: number;
  /** Per source with a change feed: how its changes are found, and how often they are pulled. */
  changeFeeds: Partial<Record<SourceName, ChangeFeedSettings>>;
}

/** What createGateway needs: everything resolved, nothing left to invent. */
export interface GatewayConfig extends Omit<Config, 'jwtSecret' | 'upstreams'> {
  /** HS256 secret; undefined when tokens are verified through AUTH_JWKS_URL. */
  jwtSecret: string | undefined;
  upstreams: UpstreamEndpoints;
  /** True when `upstreams` are the embedded simulated ones (shown in serverInfo and at start). */
  simulatedUpstreams: boolean;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/** A setting's default for one source: its definition's, else the shared one. */
function defaultFor(source: SourceName, setting: Setting): number {
  return SOURCES.find((d) => d.name === source)?.tuning?.[setting.key] ?? setting.default;
}

/** Each source's URL variable, and its credentials' variables by endpoint field. */
const CREDENTIALS = Object.fromEntries(SOURCES.map((d) => [d.name, { url: d.env.url, secrets: d.env.credentials as Record<string, string> }])) as Record<
  SourceName,
  { url: string; secrets: Record<string, string> }
>;

const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL, e.g. https://api.example.com' }).transform((u) => u.replace(/\/+$/, ''));
const proxyUrl = z.url({ protocol: /^https?$/, error: 'must be the http(s) URL of a proxy, e.g. http://proxy.internal:3128' });
/** A list of Redis seeds (`what` they are, for the message), read by redisSeeds. */
const redisSeedList = (what: string) =>
  z
    .string()
    .superRefine((value, ctx) => {
      const seeds = redisSeeds(value, what);
      if (typeof seeds === 'string') ctx.addIssue({ code: 'custom', message: seeds });
    })
    .optional();
const int = (min: number, max: number) =>
  z.coerce
    .number({ error: 'must be a number' })
    .int({ error: 'must be a whole number' })
    .min(min, { error: `must be at least ${min}` })
    .max(max, { error: `must be at most ${max}` })
    .meta({ range: [min, max] });
const secret = z.string().min(1);

const num = (min: number, max: number) =>
  z.coerce
    .number({ error: 'must be a number' })
    .min(min, { error: `must be at least ${min}` })
    .max(max, { error: `must be at most ${max}` })
    .meta({ range: [min, max] });

/** Every source's URL and credential variables, from the registry. */
const endpointShape = Object.fromEntries(
  SOURCES.flatMap((d) => [
    [d.env.url, httpUrl.optional().describe(`base URL of ${d.description}; all sources or none (the simulated demo)`)],
    ...Object.entries(d.env.credentials as Record<string, string>).map(([field, variable]) => [
      variable,
      secret.optional().describe(`${d.name} credential (${field}); never logged`),
    ]),
    ...('webhooks' in d && d.webhooks
      ? [
          [
            d.webhooks.secretEnv,
            z
              .string()
              .regex(/^whsec_[A-Za-z0-9+/]+={0,2}$/, { error: 'must be whsec_<base64>, as the vendor shows it' })
              .optional()
              .describe(`Standard Webhooks signing secret of ${d.name}'s events; set, \`POST /webhooks/${d.name}\` accepts them; never logged`),
          ],
        ]
      : []),
    ...('changeFeed' in d && d.changeFeed
      ? [
          [
            `${d.changeFeed.env}_CHANGE_FEED`,
            z
              .enum(['pull', 'hash', 'off'], { error: 'must be pull, hash or off' })
              .default(d.changeFeed.pull ? 'pull' : 'hash')
              .describe(
                `how changes to ${d.name}'s records are found: pull (poll the vendor's filter of changed records), hash (compare the records the cache refreshes anyway), off`,
              ),
          ],
          [
            `${d.changeFeed.env}_CHANGE_FEED_INTERVAL_MS`,
            int(100, 3_600_000)
              .default(d.changeFeed.defaultIntervalMs)
              .describe(`how often ${d.name}'s changes are pulled (one poller across instances); a change is seen within two intervals`),
          ],
          [
            `${d.changeFeed.env}_CHANGE_FEED_OVERLAP_MS`,
            int(0, 3_600_000)
              .default(CHANGE_FEED_OVERLAP_MS_DEFAULT)
              .describe(
                `how far before the latest change applied each pull of ${d.name} looks again, for changes its search lists late under an earlier updated_at (an eventually consistent index); changes seen again are skipped, so a change later than this is missed`,
              ),
          ],
        ]
      : []),
  ]),
);

const sourceTuningShape = Object.fromEntries(
  SOURCE_NAMES.flatMap((source) =>
    Object.entries(SOURCE_SETTINGS).map(([suffix, s]) => [
      `${source.toUpperCase()}_${suffix}`,
      (s.integer ? int(s.min, s.max) : num(s.min, s.max)).default(defaultFor(source, s)).describe(s.doc),
    ]),
  ),
);

const CACHE_WINDOWS: Record<string, keyof EntityPolicy> = {
  TTL_MS: 'ttlMs',
  STALE_WHILE_REVALIDATE_MS: 'staleWhileRevalidateMs',
  STALE_IF_ERROR_MS: 'staleIfErrorMs',
};
const DAY_MS = 86_400_000;
const CACHE_WINDOW_DOCS: Record<keyof EntityPolicy, string> = {
  ttlMs: 'fresh for this long',
  staleWhileRevalidateMs: 'then served at once while one refresh runs, this long more (`0`: off)',
  staleIfErrorMs: 'served when its source fails, this long past fresh (`0`: off)',
};
const cacheDefaults = defaultCacheConfig(defaultEntityPolicies());
/** The cache variables of one entity (`CACHE_<ENTITY>_TTL_MS`, …), by exact name: one entity's name may begin another's (USER, USER_PAGE). */
export const cacheVariableNames = (entityEnv: string): string[] => Object.keys(CACHE_WINDOWS).map((suffix) => `CACHE_${entityEnv}_${suffix}`);
const cacheShape = Object.fromEntries(
  Object.values(ENTITY_SETTINGS).flatMap((entity) =>
    Object.entries(CACHE_WINDOWS).map(([suffix, key]) => [
      `CACHE_${entity.env}_${suffix}`,
      int(key === 'ttlMs' ? 1 : 0, 7 * DAY_MS)
        .default(entity.defaults[key])
        .describe(`${CACHE_WINDOW_DOCS[key]}: ${entity.what}`),
    ]),
  ),
);
const bool = z.enum(['true', 'false', '1', '0'], { error: 'must be true or false' }).transform((v) => v === 'true' || v === '1');

/**
 * Every variable, with what it means: `npm run docs` writes the configuration
 * reference (docs/configuration.md) from this schema, so a description here is
 * the documentation.
 */
export const envSchema = z.object({
  NODE_ENV: z.string().optional().describe('`production`: GraphiQL, introspection and field suggestions off; real upstreams and `AUTH_JWT_SECRET` or `AUTH_JWKS_URL` required'),
  HOST: z
    .string()
    .min(1)
    .optional()
    .describe(
      'listen address; by default `127.0.0.1` in the demo (simulated upstreams), else `::`: every interface, IPv6 and IPv4 (IPv4 alone where the machine has no IPv6); `0.0.0.0` for IPv4 only',
    ),
  PORT: int(0, 65_535).default(4000).describe('HTTP port (`0`: any free port)'),
  HTTPS_PROXY: proxyUrl
    .optional()
    .describe('the proxy calls to https:// vendors go through (a CONNECT tunnel); `https_proxy` too, which wins; user and password in it are sent to the proxy'),
  HTTP_PROXY: proxyUrl.optional().describe('the proxy calls to http:// vendors go through, and https:// ones when HTTPS_PROXY is unset; `http_proxy` too, which wins'),
  NO_PROXY: z
    .string()
    .optional()
    .describe(
      'vendors reached directly, not through a proxy: `host`, `.domain`, `host:port`, or `*`, comma-separated; `no_proxy` too, which wins. localhost, 127.0.0.1 and [::1] always are',
    ),
  OTEL_EXPORTER_OTLP_ENDPOINT: httpUrl
    .optional()
    .describe('OpenTelemetry collector (OTLP/HTTP) base URL; set, spans go to `<it>/v1/traces`: one per operation, one per vendor call; off when unset'),
  OTEL_SERVICE_NAME: z.string().min(1).default('rest-graphql-gateway').describe("the traces' `service.name`"),
  WORKERS: int(1, 256)
    .optional()
    .describe(
      "server processes on one port (node:cluster); by default in production a worker per core, but no more than the container's CPU quota (rounded down) nor its memory limit at 256 MiB a worker allow; else 1; the embedded demo always runs one",
    ),
  WORKER_STALL_TIMEOUT_MS: int(0, 600_000)
    .default(15_000)
    .describe(
      "under WORKERS > 1, a worker that has not said it is alive (every second) for this long has its event loop stuck: the primary kills it and starts another (`0`: never). One process alone is the orchestrator's to restart: /healthz stops answering",
    ),
  LOG_BUFFER_MAX_BYTES: int(64 * 1024, 1024 * 1024 * 1024)
    .default(8 * 1024 * 1024)
    .describe(
      'log lines held for stdout at most while it is not read (a stalled log collector); past it, lines are dropped and counted (`gateway_log_lines_dropped_total`) instead of filling the heap',
    ),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('JSON lines, pretty on a terminal'),
  AUTH_JWT_SECRET: z
    .string()
    .min(32, { error: 'must be at least 32 characters (HS256 needs a 256-bit secret)' })
    .optional()
    .describe('HS256 secret for incoming tokens, at least 32 characters; made per run (and a token printed) in the demo'),
  // Typed as nothing in particular: read by variable name below (`e[...]`), like the per-source settings.
  ...(endpointShape as object),
  REQUEST_DEADLINE_MS: int(100, 600_000).default(3000).describe('one deadline for all the upstream work of a GraphQL request (see docs/resilience.md, "The default budgets")'),
  REDIS_URL: z
    .url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL' })
    .optional()
    .describe('turns on rate limits shared by all instances, the L2 cache and cross-instance invalidation, the durable delivery queue and shared idempotency keys'),
  REDIS_CLUSTER_NODES: redisSeedList("some of the cluster's nodes; the rest are discovered").describe(
    "instead of REDIS_URL: a Redis Cluster (ioredis Cluster) for everything Redis does here. host:port,host:port,… (some of the cluster's nodes; the rest are discovered); any of them may be a redis:// or rediss:// URL with a user and password, which then apply to every node (rediss: TLS)",
  ),
  REDIS_SENTINELS: redisSeedList('the sentinels').describe(
    "instead of REDIS_URL: Redis behind Sentinel (ioredis asks the sentinels for the master, and again after a failover). host:port,host:port,… of the sentinels; any may be a redis:// or rediss:// URL with the user and password of the Redis servers (not the sentinels'), which then apply to every one (rediss: TLS to the sentinels and to the servers they name)",
  ),
  REDIS_SENTINEL_MASTER: z.string().min(1).optional().describe('the name the sentinels monitor the master under (`sentinel monitor <name> …`); required with REDIS_SENTINELS'),
  REDIS_SENTINEL_PASSWORD: secret.optional().describe("the sentinels' own password, when they ask for one; never logged"),
  REDIS_KEY_PREFIX: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[^{}]*$/, { error: 'must not hold braces: they would make Redis Cluster hash tags of it' })
    .default('gw:')
    .describe('prefix of every key this server writes'),
  AUTH_JWKS_URL: httpUrl.optional().describe('instead of the secret: RS256/ES256 tokens verified with this JWKS (keys cached 10 minutes, fetched again for an unknown key id)'),
  AUTH_ISSUER: z.string().min(1).optional().describe('required `iss` when set'),
  AUTH_AUDIENCE: z.string().min(1).optional().describe('required `aud` when set'),
  AUTH_CLOCK_TOLERANCE_S: int(0, 600).default(30).describe('clock skew allowed on `exp` / `nbf`'),
  CORS_ORIGINS: z.string().optional().describe('comma-separated origins allowed to call from browsers; unset: no CORS headers (same origin only)'),
  GRAPHQL_MAX_DEPTH: int(1, 1000).default(12).describe('document depth limit (graphql-armor)'),
  GRAPHQL_MAX_COST: int(1, 10_000_000).default(5000).describe('document cost limit (graphql-armor)'),
  GRAPHQL_MAX_ALIASES: int(0, 10_000).default(30).describe('aliases per document'),
  GRAPHQL_MAX_TOKENS: int(10, 1_000_000).default(3000).describe('tokens per document'),
  GRAPHQL_MAX_DIRECTIVES: int(0, 10_000).default(30).describe('directives per document'),
  GRAPHQL_BATCHING: bool.default(false).describe('accept batched operations (at most 10 per request)'),
  MAX_BODY_BYTES: int(1024, 100 * 1024 * 1024)
    .default(100 * 1024)
    .describe('larger request bodies get 413 (before `100 Continue` when asked, else after they are drained)'),
  LOAD_SHED_MAX_IN_FLIGHT: int(0, 1_000_000)
    .default(2000)
    .describe('GraphQL requests in progress at once per process; past it new ones get 503 with Retry-After and OVERLOADED (`0`: no bound)'),
  LOAD_SHED_MAX_ENTITY_READS: int(0, 10_000_000)
    .default(20_000)
    .describe(
      'entity reads (a user, its metrics, its unread count…) of the GraphQL requests in progress, summed, per process — what they hold in memory grows with it (a dashboard makes 7, a list of the names, metrics and unread counts of 500 users 2,500: a field read ahead for many users counts when started and when read); past it new GraphQL requests get 503 (`0`: no bound)',
    ),
  LOAD_QUEUE_AT_ENTITY_READS: int(0, 10_000_000)
    .default(3000)
    .describe(
      'entity reads the GraphQL requests in progress are expected to make, summed, per process (requests in progress × the reads a request made lately; a dashboard makes 7, a list of the names, metrics and unread counts of 50 users 250); past it new requests wait in line, first come first served, so that past capacity the waiting ones hold a socket, not vendor answers (`0`: no line; must be below `LOAD_SHED_MAX_ENTITY_READS`)',
    ),
  LOAD_QUEUE_MAX_WAIT_MS: int(1, 600_000)
    .default(1000)
    .describe('the longest a GraphQL request waits in that line; past it, 503 with Retry-After and OVERLOADED (reason `queue_wait`)'),
  LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: int(0, 60_000)
    .default(500)
    .describe("the event loop's p99 delay (read every 500 ms) past which, in two readings running, new GraphQL requests get 503 until it recovers (`0`: not watched)"),
  LOAD_SHED_MAX_HEAP_USED_RATIO: num(0, 1)
    .default(0.9)
    .describe("heap used as a share of V8's limit (`--max-old-space-size`) past which new GraphQL requests get 503, before the heap runs out (`0`: not watched)"),
  COMPRESSION_ENABLED: bool.default(true).describe('gzip or brotli by Accept-Encoding'),
  COMPRESSION_THRESHOLD_BYTES: int(0, 100 * 1024 * 1024)
    .default(1024)
    .describe('smaller responses go out uncompressed'),
  REQUEST_TIMEOUT_MS: int(1000, 600_000).default(30_000).describe('a request body still arriving after this gets 408'),
  HTTP_KEEP_ALIVE_MS: int(1000, 3_600_000)
    .default(65_000)
    .describe(
      "how long an idle client connection is kept for its next request. Keep it longer than the idle timeout of a load balancer in front (AWS ALB 60 s, nginx's upstream keepalive 60 s; Google Cloud's needs over 600 s): a balancer ignores our `Keep-Alive: timeout` and now and then sends a request on a connection we are closing, which its client gets as a 502. Node's own default is 5 s",
    ),
  MAX_CLIENT_CONNECTIONS: int(1, 1_000_000)
    .optional()
    .describe(
      "client connections one process keeps open at most (requests, event streams and WebSockets together); a connection past it closes the ones idle the longest, or is refused when none is. By default what the open-file limit (`ulimit -n`) leaves once the vendors' connection pools and 128 descriptors of our own are counted, at most 10000 (about 44 MB of idle connections)",
    ),
  GRAPHIQL_ENABLED: bool.optional().describe('GraphiQL at /graphql in a browser; by default on, except in production'),
  INTROSPECTION_ENABLED: bool.optional().describe('by default on, except in production; field suggestions ("Did you mean …") follow it'),
  PERSISTED_OPERATIONS_REQUIRED: bool.default(false).describe('only the allow-list made from `examples/operations/` runs'),
  APQ_ENABLED: bool.default(true).describe('automatic persisted queries (off when persisted operations are required)'),
  CALLER_RATE_LIMIT_PER_SEC: num(0.1, 100_000).default(50).describe('per caller (token subject), shared through Redis when configured; 429 with Retry-After beyond'),
  CALLER_RATE_LIMIT_BURST: int(1, 100_000).default(100).describe('requests a caller may save up'),
  SUBSCRIPTIONS_PER_CALLER: int(1, 10_000).default(20).describe('live subscriptions one caller may hold on one instance (SSE and WebSocket together); past it, RATE_LIMITED'),
  LIVE_EVENTS_KEPT: int(100, 10_000_000)
    .default(10_000)
    .describe(
      'with Redis: live events kept in its stream (`{<prefix>live}:events`, a few hundred bytes each) for an instance whose connection was away to read on from where it left off; one away for more events misses the rest (one warn line)',
    ),
  SUBSCRIPTION_HELD_EVENTS_MAX: int(1, 100_000)
    // Not much lower: events from Redis come in bursts (hundreds in one socket read), faster than any consumer can pull.
    .default(1000)
    .describe(
      'notificationAdded events held for a subscriber that is not reading (a stalled connection); one more ends its subscription with OVERLOADED (reason subscriber_behind), so a stalled client cannot grow memory',
    ),
  SUBSCRIPTION_STALLED_CUT_MS: int(1000, 3_600_000)
    .default(60_000)
    .describe(
      'an event stream (SSE) whose client has taken none of the data waiting for it this long is cut: its subscription may have ended, but the connection, and what is buffered for it, stayed until TCP gave up (about 15 minutes). An idle stream that takes its keep-alives is never cut',
    ),
  SUBSCRIPTION_READ_WINDOW_MS: int(0, 1000)
    .default(50)
    .describe('what subscription events read again (an unread count) is collected this long and read as one batch: fewer vendor calls for a little latency'),
  WEBHOOK_SETTLE_MS: int(0, 60_000)
    .default(2000)
    .describe(
      "after a vendor's event drops the entries it changed, they are dropped again this long after and subscribers told again: a vendor may send the event before its own reads show the change (reads from a replica); `0`: once",
    ),
  SOURCE_SUCCESS_RATE_WARN: num(0, 1).default(0.9).describe("log a source whose last minute's success rate falls below this (`0`: never)"),
  SHUTDOWN_GRACE_MS: int(0, 600_000).default(10_000).describe('time in-flight requests get on SIGTERM before their connections are cut'),
  WRITE_SETTLE_MS: int(0, 60_000)
    .default(2000)
    .describe(
      'after a write drops the cache entries it changed, they are dropped again this long after: a vendor may answer a write before its own reads show it (reads from a replica), and what was read meanwhile is the old data; `0`: once',
    ),
  DELIVERY_MAX_ATTEMPTS: int(1, 100).default(10).describe('attempts per secondary delivery in all, the first included; then dead-lettered'),
  DELIVERY_BACKOFF_MS: int(10, 3_600_000).default(1000).describe('backoff base between delivery attempts (×2 each time, ±50 % jitter)'),
  DELIVERY_CONCURRENCY: int(1, 1000).default(8).describe('deliveries one instance works on at once'),
  DELIVERY_STALLED_AFTER_MS: int(1000, 3_600_000).default(30_000).describe('a delivery whose worker died is taken up again after this long'),
  IDEMPOTENCY_TTL_MS: int(60_000, 30 * DAY_MS)
    .default(DAY_MS)
    .describe('how long an idempotency key and its payload are kept'),
  CACHE_ENABLED: bool.default(true).describe('`false`: every read goes upstream (batching still applies)'),
  CACHE_L1_MAX_BYTES: int(1024, 16 * 1024 ** 3)
    .default(cacheDefaults.l1MaxBytes)
    .describe(
      'bound of the in-process tier: each entry counts its JSON plus ~700 bytes of bookkeeping, 0.9–1.5× this in the heap; a sixteenth of it is the window where, once the rest is full, a key waits until it is asked again; keep the heap cap ≥ 1.5 × this + `CACHE_RESPONSES_MAX_BYTES` + 100 MB',
    ),
  CACHE_L2_TIMEOUT_MS: int(1, 60_000).default(cacheDefaults.l2TimeoutMs).describe('a Redis cache read slower than this is a miss'),
  CACHE_NEGATIVE_TTL_MS: int(0, DAY_MS).default(cacheDefaults.negativeTtlMs).describe('how long "no such entity" is remembered'),
  CACHE_BATCH_WINDOW_MS: int(0, 1000)
    .default(cacheDefaults.batchWindowMs)
    .describe('how long cache misses are collected from all requests before they go upstream as one batch per source (`0`: the current turn of the event loop)'),
  CACHE_RESPONSES_MAX_BYTES: int(0, 16 * 1024 ** 3)
    .default(cacheDefaults.responsesMaxBytes)
    .describe('bound of the whole-response cache of entity queries; `0` turns it off'),
  ...sourceTuningShape,
  ...cacheShape,
});

type Env = Record<string, string | undefined>;

export function loadConfig(env: Env = process.env): Config {
  // An empty variable means "not set", as a shell `FOO= npm start` intends.
  const present: Env = {};
  for (const [key, value] of Object.entries(env)) if (value !== undefined && value !== '') present[key] = value;

  // As curl and undici read them: the lower-case name wins.
  for (const name of PROXY_VARIABLES) if (present[name.toLowerCase()] !== undefined) present[name] = present[name.toLowerCase()];
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const variable = String(issue.path[0] ?? 'environment');
        const shown = present[variable] !== undefined && !/SECRET|TOKEN|KEY/.test(variable) ? ` (got "${withoutPasswords(present[variable])}")` : '';
        return `${variable} ${issue.message}${shown}`;
      }),
    );
  }
  const e = parsed.data as Record<string, string | number | undefined> & z.infer<typeof envSchema>;
  const production = e.NODE_ENV === 'production';
  const problems: string[] = [];

  const configuredUrls = SOURCE_NAMES.filter((s) => e[CREDENTIALS[s].url] !== undefined);
  let upstreams: UpstreamEndpoints | null = null;
  if (configuredUrls.length === 0 && !production) {
    upstreams = null;
  } else {
    const missing = SOURCE_NAMES.flatMap((s) => [CREDENTIALS[s].url, ...Object.values(CREDENTIALS[s].secrets)].filter((v) => e[v] === undefined));
    if (missing.length > 0) {
      const why =
        configuredUrls.length === 0
          ? 'NODE_ENV=production never runs on simulated upstreams; configure every upstream'
          : 'some upstreams are configured and some are not; configure all of them (or none, for the simulated demo)';
      problems.push(`${why}. Missing: ${missing.join(', ')}`);
    } else {
      upstreams = Object.fromEntries(
        SOURCE_NAMES.map((s) => [
          s,
          { url: String(e[CREDENTIALS[s].url]), ...Object.fromEntries(Object.entries(CREDENTIALS[s].secrets).map(([field, variable]) => [field, String(e[variable])])) },
        ]),
      ) as UpstreamEndpoints;
    }
  }
  if (production && e.AUTH_JWT_SECRET === undefined && e.AUTH_JWKS_URL === undefined) {
    problems.push('AUTH_JWT_SECRET or AUTH_JWKS_URL is required when NODE_ENV=production');
  }
  if (e.AUTH_JWT_SECRET !== undefined && e.AUTH_JWKS_URL !== undefined) {
    problems.push('set AUTH_JWT_SECRET (HS256) or AUTH_JWKS_URL (RS256/ES256), not both');
  }
  if (e.LOAD_QUEUE_AT_ENTITY_READS > 0 && e.LOAD_SHED_MAX_ENTITY_READS > 0 && e.LOAD_QUEUE_AT_ENTITY_READS >= e.LOAD_SHED_MAX_ENTITY_READS) {
    // Requests would be refused before any of them waited: the line would never form.
    problems.push(`LOAD_QUEUE_AT_ENTITY_READS (${e.LOAD_QUEUE_AT_ENTITY_READS}) must be below LOAD_SHED_MAX_ENTITY_READS (${e.LOAD_SHED_MAX_ENTITY_READS}), or 0 for no line`);
  }
  if ([e.REDIS_URL, e.REDIS_CLUSTER_NODES, e.REDIS_SENTINELS].filter(Boolean).length > 1) {
    problems.push('set one of REDIS_URL (one Redis), REDIS_CLUSTER_NODES (a Redis Cluster) or REDIS_SENTINELS (Redis behind Sentinel), not more');
  }
  if (e.REDIS_SENTINELS && !e.REDIS_SENTINEL_MASTER) problems.push('REDIS_SENTINEL_MASTER is required with REDIS_SENTINELS: the name the sentinels monitor the master under');
  const corsOrigins = (e.CORS_ORIGINS ?? '')
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean);
  for (const origin of corsOrigins) {
    if (origin !== '*' && !/^https?:\/\/[^/\s]+$/.test(origin)) problems.push(`CORS_ORIGINS entries must be origins like https://app.example.com (got "${origin}")`);
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const tuning = Object.fromEntries(
    SOURCE_NAMES.map((source) => [
      source,
      Object.fromEntries(Object.entries(SOURCE_SETTINGS).map(([suffix, s]) => [s.key, Number(e[`${source.toUpperCase()}_${suffix}`])])) as unknown as SourceTuning,
    ]),
  ) as Record<SourceName, SourceTuning>;
  for (const source of SOURCE_NAMES) {
    const t = tuning[source];
    if (t.retryBaseDelayMs > t.retryMaxDelayMs) problems.push(`${source.toUpperCase()}_RETRY_BASE_DELAY_MS must not exceed ${source.toUpperCase()}_RETRY_MAX_DELAY_MS`);
  }
  if (problems.length > 0) throw new ConfigError(problems);

  return {
    production,
    // The demo (simulated upstreams, a printed admin token) listens on loopback only.
    // Every interface, IPv6 too: an IPv6-only cluster's probes and clients were refused on 0.0.0.0.
    host: e.HOST ?? (upstreams === null ? '127.0.0.1' : '::'),
    port: e.PORT,
    logLevel: e.LOG_LEVEL,
    logBufferMaxBytes: e.LOG_BUFFER_MAX_BYTES,
    ...workersOf(e.WORKERS, production),
    workerStallTimeoutMs: e.WORKER_STALL_TIMEOUT_MS,
    proxy: e.HTTPS_PROXY || e.HTTP_PROXY ? { http: e.HTTP_PROXY, https: e.HTTPS_PROXY, noProxy: e.NO_PROXY ?? '' } : null,
    tracing: e.OTEL_EXPORTER_OTLP_ENDPOINT ? { endpoint: e.OTEL_EXPORTER_OTLP_ENDPOINT, serviceName: e.OTEL_SERVICE_NAME } : null,
    jwtSecret: e.AUTH_JWT_SECRET,
    tuning,
    requestDeadlineMs: e.REQUEST_DEADLINE_MS,
    redis: e.REDIS_CLUSTER_NODES
      ? { ...(redisSeeds(e.REDIS_CLUSTER_NODES) as RedisSeeds), keyPrefix: e.REDIS_KEY_PREFIX }
      : e.REDIS_SENTINELS
        ? sentinelSettings(redisSeeds(e.REDIS_SENTINELS) as RedisSeeds, e.REDIS_SENTINEL_MASTER!, e.REDIS_SENTINEL_PASSWORD, e.REDIS_KEY_PREFIX)
        : e.REDIS_URL
          ? { url: e.REDIS_URL, keyPrefix: e.REDIS_KEY_PREFIX }
          : null,
    cache: {
      enabled: e.CACHE_ENABLED,
      l1MaxBytes: e.CACHE_L1_MAX_BYTES,
      l2TimeoutMs: e.CACHE_L2_TIMEOUT_MS,
      negativeTtlMs: e.CACHE_NEGATIVE_TTL_MS,
      batchWindowMs: e.CACHE_BATCH_WINDOW_MS,
      responsesMaxBytes: e.CACHE_RESPONSES_MAX_BYTES,
      entities: Object.fromEntries(
        Object.entries(ENTITY_SETTINGS).map(([entity, settings]) => [
          entity,
          Object.fromEntries(Object.entries(CACHE_WINDOWS).map(([suffix, key]) => [key, Number(e[`CACHE_${settings.env}_${suffix}`])])) as unknown as EntityPolicy,
        ]),
      ),
    },
    ops: {
      auth: { jwksUrl: e.AUTH_JWKS_URL, issuer: e.AUTH_ISSUER, audience: e.AUTH_AUDIENCE, clockToleranceSec: e.AUTH_CLOCK_TOLERANCE_S },
      corsOrigins,
      compression: e.COMPRESSION_ENABLED ? { thresholdBytes: e.COMPRESSION_THRESHOLD_BYTES } : null,
      httpKeepAliveMs: e.HTTP_KEEP_ALIVE_MS,
      maxClientConnections: e.MAX_CLIENT_CONNECTIONS ?? null,
      limits: {
        maxDepth: e.GRAPHQL_MAX_DEPTH,
        maxCost: e.GRAPHQL_MAX_COST,
        maxAliases: e.GRAPHQL_MAX_ALIASES,
        maxTokens: e.GRAPHQL_MAX_TOKENS,
        maxDirectives: e.GRAPHQL_MAX_DIRECTIVES,
        maxBodyBytes: e.MAX_BODY_BYTES,
        requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
        batching: e.GRAPHQL_BATCHING,
      },
      loadShedding: {
        maxInFlight: e.LOAD_SHED_MAX_IN_FLIGHT,
        maxEventLoopDelayMs: e.LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS,
        maxHeapUsedRatio: e.LOAD_SHED_MAX_HEAP_USED_RATIO,
        maxEntityReads: e.LOAD_SHED_MAX_ENTITY_READS,
      },
      admission: { queueAtEntityReads: e.LOAD_QUEUE_AT_ENTITY_READS, maxWaitMs: e.LOAD_QUEUE_MAX_WAIT_MS },
      graphiql: e.GRAPHIQL_ENABLED ?? !production,
      introspection: e.INTROSPECTION_ENABLED ?? !production,
      persistedOperationsRequired: e.PERSISTED_OPERATIONS_REQUIRED,
      apq: e.APQ_ENABLED,
      callerRateLimit: { perSec: Number(e.CALLER_RATE_LIMIT_PER_SEC), burst: e.CALLER_RATE_LIMIT_BURST },
      subscriptionsPerCaller: e.SUBSCRIPTIONS_PER_CALLER,
      subscriptionHeldEventsMax: e.SUBSCRIPTION_HELD_EVENTS_MAX,
      liveEventsKept: e.LIVE_EVENTS_KEPT,
      subscriptionReadWindowMs: e.SUBSCRIPTION_READ_WINDOW_MS,
      subscriptionStalledCutMs: e.SUBSCRIPTION_STALLED_CUT_MS,
      sourceSuccessRateWarn: Number(e.SOURCE_SUCCESS_RATE_WARN),
      shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    },
    writes: {
      deliveryMaxAttempts: e.DELIVERY_MAX_ATTEMPTS,
      deliveryBackoffMs: e.DELIVERY_BACKOFF_MS,
      deliveryConcurrency: e.DELIVERY_CONCURRENCY,
      deliveryStalledAfterMs: e.DELIVERY_STALLED_AFTER_MS,
      idempotencyTtlMs: e.IDEMPOTENCY_TTL_MS,
      settleMs: e.WRITE_SETTLE_MS,
    },
    upstreams,
    webhookSecrets: Object.fromEntries(
      SOURCES.flatMap((d) => ('webhooks' in d && d.webhooks && e[d.webhooks.secretEnv] !== undefined ? [[d.name, String(e[d.webhooks.secretEnv])]] : [])),
    ),
    webhookSettleMs: e.WEBHOOK_SETTLE_MS,
    changeFeeds: Object.fromEntries(
      SOURCES.flatMap((d) =>
        'changeFeed' in d && d.changeFeed
          ? [
              [
                d.name,
                {
                  mode: e[`${d.changeFeed.env}_CHANGE_FEED`] as ChangeFeedSettings['mode'],
                  intervalMs: Number(e[`${d.changeFeed.env}_CHANGE_FEED_INTERVAL_MS`]),
                  overlapMs: Number(e[`${d.changeFeed.env}_CHANGE_FEED_OVERLAP_MS`]),
                },
              ],
            ]
          : [],
      ),
    ),
  };
}

interface RedisSeeds {
  /** The first seed as a URL with the scheme and credentials every Redis server is reached with (see newRedisClient). */
  url: string;
  clusterNodes: { host: string; port: number }[];
}

/**
 * REDIS_CLUSTER_NODES or REDIS_SENTINELS read: `host:port` items (`what` they are, for the message), any of which may
 * be a `redis://` or `rediss://` URL with a user and password (a managed cluster with AUTH, with TLS). What a URL
 * gives applies to every Redis server, the ones discovered included, so it need be given once; two that differ are a
 * mistake, not a choice. A message when it cannot be read.
 */
function redisSeeds(value: string, what = ''): RedisSeeds | string {
  const shape = `must be host:port,host:port,… (${what}), each may be a redis:// or rediss:// URL`;
  let reach: { protocol: string; username: string; password: string } | undefined;
  const clusterNodes: RedisSeeds['clusterNodes'] = [];
  for (const item of value.split(',').map((i) => i.trim())) {
    const isUrl = /^rediss?:\/\//.test(item);
    const written = isUrl ? item : `redis://${item}`;
    const url = URL.canParse(written) ? new URL(written) : undefined;
    const credentials = url !== undefined && (url.username !== '' || url.password !== '');
    if (!url || url.port === '' || (url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '' || (!isUrl && credentials)) {
      return `${shape}; "${withoutPasswords(item)}" is not`;
    }
    if (isUrl) {
      const given = { protocol: url.protocol, username: url.username, password: url.password };
      if (reach && (reach.protocol !== given.protocol || reach.username !== given.username || reach.password !== given.password)) {
        return 'every node is reached with the same scheme, user and password: give them once, or the same on each URL';
      }
      reach = given;
    }
    clusterNodes.push({ host: url.hostname, port: Number(url.port) });
  }
  const first = clusterNodes[0]!;
  const credentials = reach && (reach.username !== '' || reach.password !== '') ? `${reach.username}:${reach.password}@` : '';
  return { url: `${reach?.protocol ?? 'redis:'}//${credentials}${first.host}:${first.port}`, clusterNodes };
}

/** Redis behind Sentinel: the seeds read as a cluster's are, `url` carrying the Redis servers' scheme and credentials. */
function sentinelSettings(seeds: RedisSeeds, master: string, password: string | undefined, keyPrefix: string): RedisSettings {
  return { url: seeds.url, keyPrefix, sentinels: { nodes: seeds.clusterNodes, master, ...(password ? { password } : {}) } };
}

/** The proxy settings, each also read under its lower-case name (which wins). */
const PROXY_VARIABLES = ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY'] as const;

/** WORKERS as set; else, in production, a worker per core the container allows (src/container-limits.ts); else one. */
function workersOf(set: number | undefined, production: boolean): { workers: number; workersLimitedBy: string | null; workersMemoryShortfall: string | null } {
  if (!production) return { workers: set ?? 1, workersLimitedBy: null, workersMemoryShortfall: null };
  const limits = containerLimits();
  const { workers, limitedBy } = set === undefined ? defaultWorkers(limits) : { workers: set, limitedBy: null };
  return { workers, workersLimitedBy: limitedBy, workersMemoryShortfall: memoryShortfall(workers, limits) };
}
