import { Pool, type Dispatcher } from 'undici';
import type { ProxySettings, SourceTuning } from '../config-types.js';
import type { SourceName } from '../errors.js';
import { originBehindProxy } from '../egress-proxy.js';
import type { Logger } from '../logger.js';
import type { RedisConnection } from '../redis.js';
import { SourceRateLimiter } from '../resilience/rate-limiter.js';
import { SourcePolicy } from '../resilience/source-policy.js';
import type { AnySourceDefinition, SourceBase } from './define-source.js';
import type { HttpSource } from './http-source.js';
import { SOURCES, type SourceInstances, type UpstreamEndpoints } from './registry.js';
import { MAX_RESPONSE_HEADER_BYTES } from './upstream-http.js';

export { AnalyticsSource } from './analytics/analytics-source.js';
export { AuditSource } from './audit/audit-source.js';
export { IdentitySource } from './identity/identity-source.js';
export { NotificationsSource } from './notifications/notifications-source.js';
export type { UpstreamEndpoints } from './registry.js';

/** Every source by name, built from the registry. */
export type Sources = SourceInstances & {
  /** All of them, for whoever needs each (health, observers, metrics). */
  all: HttpSource[];
  close(): Promise<void>;
};

/**
 * One keep-alive undici Pool per origin, shared by whatever talks to that origin; with a proxy configured, the same
 * pool behind it (EnvHttpProxyAgent: a CONNECT tunnel per connection, NO_PROXY honoured).
 */
class Pools {
  private readonly byOrigin = new Map<string, Dispatcher>();
  constructor(private readonly proxy: ProxySettings | null) {}

  get(url: string, tuning: SourceTuning): Dispatcher {
    const origin = new URL(url).origin;
    let pool = this.byOrigin.get(origin);
    if (!pool) {
      const options = {
        connections: tuning.connections,
        connectTimeout: tuning.connectTimeoutMs,
        keepAliveTimeout: tuning.keepAliveMs,
        // A vendor's Keep-Alive hint may shorten the keep, not lengthen it past what was set.
        keepAliveMaxTimeout: tuning.keepAliveMs,
        maxResponseSize: tuning.maxResponseBytes,
        maxHeaderSize: MAX_RESPONSE_HEADER_BYTES,
      };
      pool = this.proxy ? originBehindProxy(origin, this.proxy, options) : new Pool(origin, options);
      this.byOrigin.set(origin, pool);
    }
    return pool;
  }
  async close(): Promise<void> {
    await Promise.all([...this.byOrigin.values()].map((p) => p.close()));
  }
}

export interface SourcesOptions {
  logger: Logger;
  /** The vendors to build (default: the registry's); every one needs its endpoint and its tuning. */
  definitions?: readonly AnySourceDefinition[];
  /** Shares rate limits across instances when given. */
  redis?: RedisConnection | null;
  /** Deadline of a call made outside a GraphQL request. */
  defaultDeadlineMs?: number;
  /** The proxy vendors are called through (HTTP_PROXY, HTTPS_PROXY, NO_PROXY); none: straight to them. */
  proxy?: ProxySettings | null;
}

/** Every registered source, each with its pool, policy and rate limiter from its tuning. */
export function createSources(endpoints: UpstreamEndpoints, tuning: Record<SourceName, SourceTuning>, options: SourcesOptions): Sources {
  const pools = new Pools(options.proxy ?? null);
  const base = (name: SourceName, url: string): SourceBase => {
    const t = tuning[name];
    if (!t) throw new Error(`no tuning configured for the source "${name}"`);
    return {
      name,
      baseUrl: url,
      dispatcher: pools.get(url, t),
      timeoutMs: t.timeoutMs,
      policy: new SourcePolicy(name, t, new SourceRateLimiter(name, t.rateLimitPerSec, t.rateLimitBurst, options.redis ?? null)),
      defaultDeadlineMs: options.defaultDeadlineMs ?? 3000,
      logger: options.logger,
      maxResponseBytes: t.maxResponseBytes,
    };
  };
  const all = endpoints as unknown as Record<string, { url: string } & Record<string, string>>;
  const built = Object.fromEntries(
    (options.definitions ?? SOURCES).map((definition: AnySourceDefinition) => {
      const endpoint = all[definition.name];
      if (!endpoint) throw new Error(`no endpoint configured for the source "${definition.name}"`);
      // A source outside the built-in list (a fixture, a plugin) carries its own name.
      const name = definition.name as SourceName;
      return [definition.name, definition.create(base(name, endpoint.url), endpoint) as HttpSource];
    }),
  ) as SourceInstances;
  return { ...built, all: Object.values(built) as HttpSource[], close: () => pools.close() };
}
