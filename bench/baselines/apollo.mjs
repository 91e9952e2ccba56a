/**
 * The common hand-built choice, written as a competent Apollo user would:
 * Apollo Server 5, one RESTDataSource per upstream (per request, with its GET
 * deduplication), DataLoader over the bulk endpoints (identity search by ids,
 * analytics query, unread counts), the OAuth token cached across requests.
 * RESPONSE_CACHE=1 (`apollo-cached`): its response cache as Apollo's docs set
 * it up — the cache-control plugin, each user's data hinted PRIVATE for 60 s,
 * and `@apollo/server-plugin-response-cache` keyed per session (the token).
 */
import { readFileSync } from 'node:fs';
import { RESTDataSource } from '@apollo/datasource-rest';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { ApolloServerPluginCacheControl } from '@apollo/server/plugin/cacheControl';
import responseCachePlugin from '@apollo/server-plugin-response-cache';
import DataLoader from 'dataloader';
import { announce, env, identitySearchParams, identityToken, metricsWindow, toMetrics, toNotification, toUser } from './upstream-shapes.mjs';

class IdentityAPI extends RESTDataSource {
  baseURL = `${env.IDENTITY_URL}/`;
  async willSendRequest(_path, request) {
    request.headers.authorization = `Bearer ${await identityToken()}`;
  }
  users = new DataLoader(async (ids) => {
    const body = await this.get('api/v2/users', { params: identitySearchParams(ids) });
    const byId = new Map(body.users.map((u) => [u.user_id, u]));
    return ids.map((id) => toUser(byId.get(id)));
  });
}

class AnalyticsAPI extends RESTDataSource {
  baseURL = `${env.ANALYTICS_URL}/`;
  willSendRequest(_path, request) {
    request.headers['x-api-key'] = env.ANALYTICS_API_KEY;
  }
  metrics = new DataLoader(async (ids) => {
    const body = await this.post('v1/metrics/query', { body: { user_ids: ids, ...metricsWindow() } });
    const byId = new Map(body.data.map((m) => [m.user_id, m]));
    return ids.map((id) => toMetrics(byId.get(id)));
  });
}

class NotificationsAPI extends RESTDataSource {
  baseURL = `${env.NOTIFICATIONS_URL}/`;
  willSendRequest(_path, request) {
    request.headers.authorization = `Bearer ${env.NOTIFICATIONS_TOKEN}`;
  }
  unread = new DataLoader(async (ids) => {
    const body = await this.get(`v1/unread-counts?user_ids=${ids.map(encodeURIComponent).join(',')}`);
    return ids.map((id) => body.counts[id] ?? 0);
  });
  async list(userId, first) {
    const { parsedBody, response } = await this.fetch(`v1/users/${encodeURIComponent(userId)}/notifications`, {
      method: 'GET',
      params: { page: '1', per_page: String(first), unread: 'false' },
    });
    return { totalCount: Number(response.headers.get('x-total-count')), edges: parsedBody.map((n) => ({ node: toNotification(n) })) };
  }
}

const CACHED = process.env.RESPONSE_CACHE === '1';
/** A user's data is theirs: cached per session, for a minute. */
const hint = (info) => CACHED && info.cacheControl.setCacheHint({ maxAge: 60, scope: 'PRIVATE' });

const resolvers = {
  Query: {
    user: (_p, { id }, { dataSources }, info) => (hint(info), dataSources.identity.users.load(id)),
    users: (_p, { ids }, { dataSources }, info) => (hint(info), dataSources.identity.users.loadMany(ids).then((all) => all.map((u) => (u instanceof Error ? null : u)))),
  },
  User: {
    metrics: (u, _a, { dataSources }) => dataSources.analytics.metrics.load(u.id),
    unreadNotificationCount: (u, _a, { dataSources }) => dataSources.notifications.unread.load(u.id),
    notifications: (u, { first }, { dataSources }) => dataSources.notifications.list(u.id, first),
  },
};

const server = new ApolloServer({
  typeDefs: readFileSync(new URL('./schema.graphql', import.meta.url), 'utf8'),
  resolvers,
  plugins: CACHED
    ? [ApolloServerPluginCacheControl({ defaultMaxAge: 60 }), responseCachePlugin({ sessionId: async ({ request }) => request.http?.headers.get('authorization') ?? null })]
    : [],
});
const { url } = await startStandaloneServer(server, {
  listen: { port: Number(env.PORT ?? 0), host: '127.0.0.1' },
  context: async () => {
    const cache = server.cache;
    return { dataSources: { identity: new IdentityAPI({ cache }), analytics: new AnalyticsAPI({ cache }), notifications: new NotificationsAPI({ cache }) } };
  },
});
announce(url);
