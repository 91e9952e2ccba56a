import { Pool } from 'undici';
import type { SourceTuning, UpstreamEndpoints } from '../config.js';
import type { SourceName } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { AnalyticsSource } from './analytics-source.js';
import { AuditSource } from './audit-source.js';
import { ApiKeyAuth, BearerAuth, OAuth2ClientCredentials } from './auth.js';
import { IdentitySource } from './identity-source.js';
import { NotificationsSource } from './notifications-source.js';

export { AnalyticsSource, AuditSource, IdentitySource, NotificationsSource };

export interface Sources {
  identity: IdentitySource;
  analytics: AnalyticsSource;
  notifications: NotificationsSource;
  audit: AuditSource;
  close(): Promise<void>;
}

/** One keep-alive undici Pool per origin, shared by whatever talks to that origin. */
class Pools {
  private readonly byOrigin = new Map<string, Pool>();
  get(url: string, tuning: SourceTuning): Pool {
    const origin = new URL(url).origin;
    let pool = this.byOrigin.get(origin);
    if (!pool) {
      pool = new Pool(origin, { connections: tuning.connections, keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000 });
      this.byOrigin.set(origin, pool);
    }
    return pool;
  }
  async close(): Promise<void> {
    await Promise.all([...this.byOrigin.values()].map((p) => p.close()));
  }
}

export function createSources(endpoints: UpstreamEndpoints, tuning: Record<SourceName, SourceTuning>, logger: Logger): Sources {
  const pools = new Pools();
  const base = (name: SourceName, url: string) => ({
    name,
    baseUrl: url,
    dispatcher: pools.get(url, tuning[name]),
    timeoutMs: tuning[name].timeoutMs,
    logger,
  });
  const identityBase = base('identity', endpoints.identity.url);
  const identityPath = new URL(endpoints.identity.url).pathname.replace(/\/+$/, '');
  return {
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
    close: () => pools.close(),
  };
}
