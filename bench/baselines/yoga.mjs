/**
 * graphql-yoga as its docs set up a REST-backed gateway with a response cache:
 * DataLoader per request over the bulk endpoints (identity search by ids,
 * analytics query, unread counts), the OAuth token cached across requests, and
 * `@graphql-yoga/plugin-response-cache` keyed per session (the token), with a
 * store big enough for a bench run (100,000 responses) and a 60 s TTL
 * (RESPONSE_CACHE_TTL_MS: bench/instructions.ts counts under valgrind, ~50×
 * slower, and needs its answers to outlast the count).
 */
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import DataLoader from 'dataloader';
import { createSchema, createYoga } from 'graphql-yoga';
import { createInMemoryCache, useResponseCache } from '@graphql-yoga/plugin-response-cache';
import { announce, env, identityToken, metricsWindow, toMetrics, toNotification, toUser } from './upstream-shapes.mjs';

async function getJson(url, headers) {
  const res = await fetch(url, { headers });
  if (!res.ok) throw new Error(`${res.status} from ${url}`);
  return { body: await res.json(), headers: res.headers };
}

function loaders() {
  return {
    users: new DataLoader(async (ids) => {
      const q = `user_id:(${ids.map((id) => `"${id.replace(/[\\"]/g, '\\$&')}"`).join(' OR ')})`;
      const params = new URLSearchParams({ q, page: '0', per_page: '100', include_totals: 'true' });
      const { body } = await getJson(`${env.IDENTITY_URL}/api/v2/users?${params}`, { authorization: `Bearer ${await identityToken()}` });
      const byId = new Map(body.users.map((u) => [u.user_id, u]));
      return ids.map((id) => toUser(byId.get(id)));
    }),
    metrics: new DataLoader(async (ids) => {
      const res = await fetch(`${env.ANALYTICS_URL}/v1/metrics/query`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': env.ANALYTICS_API_KEY },
        body: JSON.stringify({ user_ids: ids, ...metricsWindow() }),
      });
      if (!res.ok) throw new Error(`${res.status} from analytics`);
      const body = await res.json();
      const byId = new Map(body.data.map((m) => [m.user_id, m]));
      return ids.map((id) => toMetrics(byId.get(id)));
    }),
    unread: new DataLoader(async (ids) => {
      const { body } = await getJson(`${env.NOTIFICATIONS_URL}/v1/unread-counts?user_ids=${ids.map(encodeURIComponent).join(',')}`, {
        authorization: `Bearer ${env.NOTIFICATIONS_TOKEN}`,
      });
      return ids.map((id) => body.counts[id] ?? 0);
    }),
  };
}

const schema = createSchema({
  typeDefs: readFileSync(new URL('./schema.graphql', import.meta.url), 'utf8'),
  resolvers: {
    Query: {
      user: (_p, { id }, { loaders }) => loaders.users.load(id),
      users: (_p, { ids }, { loaders }) => loaders.users.loadMany(ids).then((all) => all.map((u) => (u instanceof Error ? null : u))),
    },
    User: {
      metrics: (u, _a, { loaders }) => loaders.metrics.load(u.id),
      unreadNotificationCount: (u, _a, { loaders }) => loaders.unread.load(u.id),
      notifications: async (u, { first }) => {
        const params = new URLSearchParams({ page: '1', per_page: String(first), unread: 'false' });
        const { body, headers } = await getJson(`${env.NOTIFICATIONS_URL}/v1/users/${encodeURIComponent(u.id)}/notifications?${params}`, {
          authorization: `Bearer ${env.NOTIFICATIONS_TOKEN}`,
        });
        return { totalCount: Number(headers.get('x-total-count')), edges: body.map((n) => ({ node: toNotification(n) })) };
      },
    },
  },
});

const yoga = createYoga({
  schema,
  graphiql: false,
  logging: false,
  context: () => ({ loaders: loaders() }),
  plugins:
    process.env.RESPONSE_CACHE === '1'
      ? [
          useResponseCache({
            session: (request) => request.headers.get('authorization'),
            ttl: Number(env.RESPONSE_CACHE_TTL_MS ?? 60_000),
            cache: createInMemoryCache({ max: 100_000 }),
          }),
        ]
      : [],
});
const server = createServer(yoga);
server.listen(Number(env.PORT ?? 0), '127.0.0.1', () => announce(`http://127.0.0.1:${server.address().port}/graphql`));
