import type { Plugin } from 'graphql-yoga';
import type { TokenVerifier } from '../auth/token-verifiers.js';
import { landingPage } from '../http/pages/landing-page.js';
import { STATUS_PAGE } from '../http/pages/status-page.js';
import type { SourceStatus } from '../observability/status-history.js';
import type { RedisConnection } from '../redis.js';

export interface PagesOptions {
  verify: TokenVerifier;
  /** Every source's status (of the whole set under WORKERS=N). */
  status: () => Promise<SourceStatus[]>;
  redis: RedisConnection | null;
  graphiql: boolean;
  /** The write queue's counts (dead letters are FAILED); null when they cannot be read now. */
  deliveries: () => Promise<Record<string, number> | null>;
}

/**
 * Pages for people: `/` (where to go from here) and `/status` (every source
 * at a glance). The status page is a shell; its data, `/status/data`, needs
 * an admin token like the admin fields of the schema: 401 without a valid
 * one, 403 for a token that is not an admin's.
 */
export function usePages(options: PagesOptions): Plugin {
  const landing = landingPage({ graphiql: options.graphiql });
  return {
    async onRequest({ request, url, endResponse, fetchAPI }) {
      if (request.method !== 'GET' && request.method !== 'HEAD') return;
      const page = (html: string) =>
        endResponse(
          new fetchAPI.Response(html, {
            status: 200,
            headers: {
              'content-type': 'text/html; charset=utf-8',
              'cache-control': 'no-store',
              // Its own inline script and style, nothing from elsewhere, never framed.
              'content-security-policy':
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
              'x-content-type-options': 'nosniff',
            },
          }),
        );
      const json = (status: number, body: unknown) =>
        endResponse(new fetchAPI.Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' } }));
      switch (url.pathname) {
        case '/':
          return page(landing);
        case '/status':
          return page(STATUS_PAGE);
        case '/status/data': {
          const token = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.get('authorization') ?? '')?.[1];
          if (!token) return json(401, { error: 'send Authorization: Bearer <admin token>' });
          let admin: boolean;
          try {
            admin = (await options.verify(token)).admin;
          } catch {
            return json(401, { error: 'the bearer token is invalid or expired' });
          }
          if (!admin) return json(403, { error: 'the status page needs an admin token' });
          return json(200, {
            generatedAt: new Date().toISOString(),
            redis: options.redis === null ? 'not configured' : options.redis.state,
            deliveries: await options.deliveries(),
            sources: await options.status(),
          });
        }
        default:
          return undefined;
      }
    },
  };
}
