import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import type { CacheConfig, EntityPolicy } from '../../src/cache/policy.js';
import type { SentinelSettings } from '../../src/config-types.js';
import { CACHED_ENTITIES } from '../../src/sources/registry.js';
import { loadConfig, type OpsConfig, type WritesConfig, type GatewayConfig, type SourceTuning, type UpstreamEndpoints } from '../../src/config.js';
import type { SourceName } from '../../src/errors.js';
import { createLogger } from '../../src/logger.js';
import { createGateway, type Gateway } from '../../src/server.js';
import type { AnySourceDefinition } from '../../src/sources/define-source.js';
import { startSimulatedUpstreams, type FaultProfileInput, type SimulatedUpstreams, type SimulatedUpstreamsOptions, type StatsSnapshot } from '../../simulator/index.js';

/**
 * The real server on loopback in front of the real simulated upstreams, as a
 * test arranges them: faults and stats go through the upstreams' admin
 * endpoint over HTTP, queries through the server's /graphql over HTTP.
 */
export interface GraphQLResponse<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: { data?: T | null; errors?: { message: string; path?: (string | number)[]; extensions?: Record<string, unknown> }[]; extensions?: Record<string, unknown> };
  text: string;
}

export interface StackOptions {
  upstreams?: SimulatedUpstreamsOptions;
  tuning?: Partial<Record<SourceName, Partial<SourceTuning>>>;
  /** Replace what the gateway is told (wrong credentials, another server). */
  endpoints?: (real: UpstreamEndpoints) => UpstreamEndpoints;
  requestDeadlineMs?: number;
  /** Cache settings over the defaults; the cache is off unless a suite turns it on (suites below the cache count every upstream call). */
  cache?: Partial<CacheConfig>;
  /** L2, shared limits and invalidation through this Redis. */
  redis?: { url: string; keyPrefix?: string; clusterNodes?: { host: string; port: number }[] | undefined; sentinels?: SentinelSettings | undefined };
  writes?: Partial<WritesConfig>;
  /** Ops settings over the defaults (the per-caller limit is lifted unless a suite sets it: suites send many requests with one token). */
  ops?: (defaults: OpsConfig) => OpsConfig;
  /** Another instance in front of this stack's upstreams, with its secret (closing it leaves them running). */
  peerOf?: Stack;
  /** Source name → `whsec_…`: turns on `POST /webhooks/<source>`. */
  webhookSecrets?: Record<string, string>;
  /** Source → change feed settings; off in tests unless a suite turns one on (a poller's calls would show in what suites count). */
  changeFeeds?: GatewayConfig['changeFeeds'];
  /** The vendors the server is built with (default: the registry's); add one's endpoint with `endpoints` and its tuning with `tuning`. */
  sources?: readonly AnySourceDefinition[];
  /** The proxy vendors are called through (as HTTP_PROXY, HTTPS_PROXY, NO_PROXY give it). */
  proxy?: GatewayConfig['proxy'];
}

export interface Stack {
  upstreams: SimulatedUpstreams;
  gateway: Gateway;
  url: string;
  secret: string;
  /** Captured JSON log lines of the gateway. */
  logs: string[];
  /** A token for `sub` (default: the first user), admin unless said otherwise. */
  token(opts?: { sub?: string; admin?: boolean; expiresIn?: string | number }): Promise<string>;
  gql<T = Record<string, unknown>>(
    query: string,
    variables?: Record<string, unknown>,
    opts?: { token?: string | null; headers?: Record<string, string> },
  ): Promise<GraphQLResponse<T>>;
  faults(name: SourceName, profile: FaultProfileInput): Promise<void>;
  stats(name: SourceName): Promise<StatsSnapshot>;
  /** Clears every upstream's faults and stats. */
  reset(): Promise<void>;
  userId(index: number): string;
  close(): Promise<void>;
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const upstreams = options.peerOf?.upstreams ?? (await startSimulatedUpstreams(options.upstreams));
  const secret = options.peerOf?.secret ?? randomBytes(32).toString('base64url');
  const base = loadConfig({});
  const tuning = { ...base.tuning };
  for (const [name, t] of Object.entries(options.tuning ?? {})) tuning[name as SourceName] = { ...tuning[name as SourceName], ...t };
  const config: GatewayConfig = {
    ...base,
    host: '127.0.0.1',
    port: 0,
    logLevel: 'debug',
    jwtSecret: secret,
    tuning,
    upstreams: options.endpoints ? options.endpoints(upstreams.endpoints) : upstreams.endpoints,
    simulatedUpstreams: true,
    ...(options.requestDeadlineMs ? { requestDeadlineMs: options.requestDeadlineMs } : {}),
    ...(options.proxy ? { proxy: options.proxy } : {}),
    cache: { ...base.cache, enabled: false, ...options.cache },
    writes: { ...base.writes, ...options.writes },
    ops: (options.ops ?? ((o) => o))({ ...base.ops, callerRateLimit: { perSec: 100_000, burst: 100_000 } }),
    webhookSecrets: options.webhookSecrets ?? {},
    changeFeeds: options.changeFeeds ?? {},
    redis: options.redis
      ? {
          url: options.redis.url,
          keyPrefix: options.redis.keyPrefix ?? `gwtest:${randomBytes(4).toString('hex')}:`,
          ...(options.redis.clusterNodes ? { clusterNodes: options.redis.clusterNodes } : {}),
          ...(options.redis.sentinels ? { sentinels: options.redis.sentinels } : {}),
        }
      : null,
  };
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(chunk.toString('utf8'));
      // Bounded, but far above what a test file writes: tests slice by index.
      if (logs.length > 200_000) logs.splice(0, 50_000);
      done();
    },
  });
  const gateway = createGateway(config, { logger: createLogger({ level: 'debug', destination }), ...(options.sources ? { sources: options.sources } : {}) });
  const url = await gateway.listen();

  const token: Stack['token'] = async (opts = {}) =>
    new SignJWT(opts.admin === false ? {} : { scope: 'admin' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(opts.sub ?? upstreams.dataset.users[0]!.user_id)
      .setIssuedAt()
      .setExpirationTime(opts.expiresIn ?? '1h')
      .sign(new TextEncoder().encode(secret));
  const adminToken = await token();

  const admin = async (name: SourceName, path: string, method: string, body?: unknown) => {
    const res = await fetch(`${upstreams[name].url}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`admin ${method} ${path} on ${name}: ${res.status} ${await res.text()}`);
    return res.json() as Promise<unknown>;
  };

  return {
    upstreams,
    gateway,
    url,
    secret,
    logs,
    token,
    async gql(query, variables, opts = {}) {
      const auth = opts.token === null ? undefined : (opts.token ?? adminToken);
      const res = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/graphql-response+json, application/json',
          ...(auth ? { authorization: `Bearer ${auth}` } : {}),
          ...opts.headers,
        },
        body: JSON.stringify({ query, variables }),
      });
      const text = await res.text();
      return { status: res.status, headers: res.headers, body: JSON.parse(text) as GraphQLResponse['body'], text } as GraphQLResponse<never>;
    },
    faults: async (name, profile) => {
      await admin(name, '/__admin/faults', 'POST', profile);
    },
    stats: (name) => admin(name, '/__admin/stats', 'GET') as Promise<StatsSnapshot>,
    reset: async () => {
      await Promise.all((['identity', 'analytics', 'notifications', 'audit'] as const).map((n) => admin(n, '/__admin/reset', 'POST')));
    },
    userId: (index) => upstreams.dataset.users[index]!.user_id,
    close: async () => {
      await gateway.close();
      if (!options.peerOf) await upstreams.close();
    },
  };
}

/** Calls made to one route, from an upstream's stats. */
/** The simulated vendors' read routes, as their stats name them. */
export const READ_ROUTES = {
  search: 'GET /api/v2/users',
  metrics: 'POST /v1/metrics/query',
  unread: 'GET /v1/unread-counts',
  notificationList: 'GET /v1/users/:id/notifications',
} as const;

/** Cache windows for every entity at once. */
export function everyEntity(policy: EntityPolicy): CacheConfig['entities'] {
  return Object.fromEntries(CACHED_ENTITIES.map((e) => [e, policy])) as CacheConfig['entities'];
}

export function calls(stats: StatsSnapshot, route: string): number {
  return stats.routes[route]?.calls ?? 0;
}

/**
 * One stack for a whole test file: started before its tests, closed after,
 * upstream faults and stats cleared before each test. Use it at the file's top.
 */
export function sharedStack(options: StackOptions = {}): Stack {
  let current: Stack | undefined;
  beforeAll(async () => {
    current = await startStack(options);
  });
  afterAll(() => current?.close());
  beforeEach(() => current?.reset());
  return new Proxy({} as Stack, {
    get(_target, key: keyof Stack) {
      if (!current) throw new Error('the stack is used before beforeAll has started it');
      return current[key];
    },
  });
}

/**
 * Stacks a test file starts as it goes, all closed after the file. Each is
 * made from the file's defaults; with `warm`, the OAuth token is fetched up
 * front and the stats cleared, so the token never shows in what a test counts.
 */
export function stackPool(
  defaults: (options: StackOptions) => StackOptions = (o) => o,
  { warm = true }: { warm?: boolean } = {},
): ((options?: StackOptions) => Promise<Stack>) & { started: readonly Stack[] } {
  const stacks: Stack[] = [];
  afterAll(async () => {
    await Promise.all(stacks.map((s) => s.close()));
  });
  const make = async (options: StackOptions = {}) => {
    const stack = await startStack(defaults(options));
    stacks.push(stack);
    if (warm) {
      await stack.gql(`{ user(id: "warm-up") { id } }`);
      await stack.reset();
    }
    return stack;
  };
  return Object.assign(make, { started: stacks as readonly Stack[] });
}
