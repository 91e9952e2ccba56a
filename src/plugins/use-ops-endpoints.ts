import type { Plugin } from 'graphql-yoga';
import type { SourceHealthMonitor } from '../observability/source-health.js';
import type { Metrics } from '../observability/metrics.js';
import { REDIS_DEGRADED, type RedisConnection } from '../redis.js';

export interface OpsEndpointsOptions {
  metrics: Metrics;
  health: SourceHealthMonitor;
  redis: RedisConnection | null;
  /** True once shutdown has begun: not ready, so load balancers stop sending. */
  draining: () => boolean;
  /** The Prometheus text to serve (default: this process's registry; under WORKERS=N the whole set's). */
  exposition?: () => Promise<string>;
}

/**
 * `/healthz` (the process answers), `/readyz` and `/metrics` (Prometheus text).
 *
 * `/readyz` answers 200 while this instance can serve and 503 only while it
 * cannot (draining on shutdown). Degraded is not down: with Redis away it
 * serves from L1 with local limits, with a vendor's breaker open it answers
 * everything else plus a typed error. Taking every instance out of a load
 * balancer for either would turn a degraded service into a total outage, so
 * those are named in the body's `degraded` and stay 200.
 */
export function useOpsEndpoints(options: OpsEndpointsOptions): Plugin {
  return {
    async onRequest({ url, endResponse, fetchAPI }) {
      const json = (status: number, body: unknown) =>
        endResponse(new fetchAPI.Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' } }));
      switch (url.pathname) {
        case '/healthz':
          return json(200, { status: 'ok' });
        case '/readyz': {
          const redis = options.redis === null ? 'not configured' : options.redis.state;
          const draining = options.draining();
          const sources = options.health.snapshot().map((s) => ({ name: s.name, state: s.state, errorRate: s.errorRate, calls: s.calls }));
          const degraded = [
            ...(redis === 'ok' || redis === 'not configured' ? [] : [REDIS_DEGRADED[redis]]),
            ...sources
              .filter((s) => s.state !== 'CLOSED')
              .map((s) => `${s.name}: circuit ${s.state.toLowerCase().replace('_', '-')}; its fields answer SOURCE_CIRCUIT_OPEN or stale data`),
          ];
          const status = draining ? 'shutting down' : degraded.length > 0 ? 'degraded' : 'ready';
          return json(draining ? 503 : 200, { status, degraded, redis, sources });
        }
        case '/metrics':
          return endResponse(
            new fetchAPI.Response(await (options.exposition ?? (() => options.metrics.registry.metrics()))(), {
              status: 200,
              headers: { 'content-type': options.metrics.registry.contentType },
            }),
          );
        default:
          return undefined;
      }
    },
  };
}
