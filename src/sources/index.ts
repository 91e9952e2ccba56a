import { Pool } from 'undici';
import type { SourceTuning, UpstreamEndpoints } from '../config-types.js';
import type { SourceName } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { RedisConnection } from '../redis.js';
import { SourceRateLimiter } from '../resilience/rate-limiter.js';
import { SourcePolicy } from '../resilience/source-policy.js';
import { AnalyticsSource } from './analytics-source.js';
import { AuditSource } from './audit-source.js';
import { ApiKeyAuth, BearerAuth, OAuth2ClientCredentials } from './auth.js';
import { IdentitySource } from './identity-source.js';
import type { HttpSource } from './http-source.js';
import { NotificationsSource } from './notifications-source.js';

export { AnalyticsSource, AuditSource, IdentitySource, NotificationsSource };

export interface Sources {
  identity: IdentitySource;
  analytics: AnalyticsSource;
  notifications: NotificationsSource;
  audit: AuditSource;
  /** The four, for whoever needs each (health, observers). */
  all: HttpSource[];
  close(): Promise<void>;
}

/** One keep-alive undici Pool per origin, shared by whatever talks to that origin. */
class Pools {
  private readonly byOrigin = new Map<string, Pool>();
  get(url: string, tuning: SourceTuning): Pool {
    const origin = new URL(url).origin;
    let pool = this.byOrigin.get(origin);
    if (!pool) {
      pool = new Pool(origin, { connections: tuning.connections, connectTimeout: tuning.connectTimeoutMs, keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000 });
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
  /** Shares rate limits across instances when given. */
  redis?: RedisConnection | null;
  /** Deadline of a call made outside a GraphQL request. */
  defaultDeadlineMs?: number;
}

export function createSources(endpoints: UpstreamEndpoints, tuning: Record<SourceName, SourceTuning>, options: SourcesOptions): Sources {
  const { logger } = options;
  const pools = new Pools();
  const base = (name: SourceName, url: string) => {
    const t = tuning[name];
    return {
      name,
      baseUrl: url,
      dispatcher: pools.get(url, t),
      timeoutMs: t.timeoutMs,
      policy: new SourcePolicy(name, t, new SourceRateLimiter(name, t.rateLimitPerSec, t.rateLimitBurst, options.redis ?? null)),
      defaultDeadlineMs: options.defaultDeadlineMs ?? 3000,
      logger,
    };
  };
  const identityBase = base('identity', endpoints.identity.url);
  const identityPath = new URL(endpoints.identity.url).pathname.replace(/\/+$/, '');
  const sources = {
    identity: new IdentitySource({
      ...identityBase,
      auth: new OAuth2ClientCredentials({
        source: 'identity',
        dispatcher: identityBase.dispatcher,
        tokenPath: `${identityPath}/oauth/token`,
        clientId: endpoints.identity.clientId,
        clientSecret: endpoints.identity.clientSecret,
        audience: endpoints.identity.audience,
        timeoutMs: tuning.identity.timeoutMs,
      }),
    }),
    analytics: new AnalyticsSource({ ...base('analytics', endpoints.analytics.url), auth: new ApiKeyAuth('x-api-key', endpoints.analytics.apiKey) }),
    notifications: new NotificationsSource({ ...base('notifications', endpoints.notifications.url), auth: new BearerAuth(endpoints.notifications.token) }),
    audit: new AuditSource({ ...base('audit', endpoints.audit.url), auth: new ApiKeyAuth('x-api-key', endpoints.audit.apiKey) }),
  };
  return { ...sources, all: Object.values(sources), close: () => pools.close() };
}
