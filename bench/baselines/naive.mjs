/**
 * A naive per-field gateway: every resolver calls its REST endpoint for its
 * own user — no batching, no cache, no deduplication — on graphql-yoga with
 * Node's fetch (keep-alive). What "just wrap the REST APIs" tends to become.
 */
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { createSchema, createYoga } from 'graphql-yoga';
import { announce, env, identityToken, metricsWindow, toMetrics, toNotification, toUser } from './upstream-shapes.mjs';

async function getUser(id) {
  const res = await fetch(`${env.IDENTITY_URL}/api/v2/users/${encodeURIComponent(id)}`, { headers: { authorization: `Bearer ${await identityToken()}` } });
  return res.status === 404 ? null : toUser(await res.json());
}

const resolvers = {
  Query: {
    user: (_p, { id }) => getUser(id),
    users: (_p, { ids }) => ids.map(getUser),
  },
  User: {
    metrics: async (u) => {
      const res = await fetch(`${env.ANALYTICS_URL}/v1/metrics/query`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': env.ANALYTICS_API_KEY },
        body: JSON.stringify({ user_ids: [u.id], ...metricsWindow() }),
      });
      return toMetrics((await res.json()).data[0]);
    },
    unreadNotificationCount: async (u) => {
      const res = await fetch(`${env.NOTIFICATIONS_URL}/v1/unread-counts?user_ids=${encodeURIComponent(u.id)}`, {
        headers: { authorization: `Bearer ${env.NOTIFICATIONS_TOKEN}` },
      });
      return (await res.json()).counts[u.id] ?? 0;
    },
    notifications: async (u, { first }) => {
      const res = await fetch(`${env.NOTIFICATIONS_URL}/v1/users/${encodeURIComponent(u.id)}/notifications?page=1&per_page=${first}`, {
        headers: { authorization: `Bearer ${env.NOTIFICATIONS_TOKEN}` },
      });
      return { totalCount: Number(res.headers.get('x-total-count')), edges: (await res.json()).map((n) => ({ node: toNotification(n) })) };
    },
  },
};

const yoga = createYoga({ schema: createSchema({ typeDefs: readFileSync(new URL('./schema.graphql', import.meta.url), 'utf8'), resolvers }), graphiql: false, logging: false });
const server = createServer(yoga);
server.listen(Number(env.PORT ?? 0), '127.0.0.1', () => announce(`http://127.0.0.1:${server.address().port}/graphql`));
