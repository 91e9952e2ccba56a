import type { Plugin } from 'graphql-yoga';
import type { SourceHealthMonitor } from '../observability/source-health.js';
import type { Metrics } from '../observability/metrics.js';
import type { RedisConnection } from '../redis.js';

export interface OpsEndpointsOptions {
  metrics: Metrics;
  health: SourceHealthMonitor;
  redis: RedisConnection | null;
  /** True once shutdown has begun: not ready, so load balancers stop sending. */
  draining: () => boolean;
}

/**
 * `/healthz` (the process answers), `/readyz` (config valid — or it would not
 * be running —, Redis reachable when configured, not shutting down; each
 * source's state in the body, where a degraded source does not make it
 * unready: the server answers around it) and `/metrics` (Prometheus text).
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
          const redis = options.redis === null ? 'not configured' : options.redis.available ? 'ok' : 'unreachable';
          const draining = options.draining();
          const ready = !draining && redis !== 'unreachable';
          const sources = options.health.snapshot().map((s) => ({ name: s.name, state: s.state, errorRate: s.errorRate, calls: s.calls }));
          return json(ready ? 200 : 503, { status: ready ? 'ready' : draining ? 'shutting down' : 'not ready', redis, sources });
        }
        case '/metrics':
          return endResponse(new fetchAPI.Response(await options.metrics.registry.metrics(), { status: 200, headers: { 'content-type': options.metrics.registry.contentType } }));
        default:
          return undefined;
      }
    },
  };
}
