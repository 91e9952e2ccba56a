import { OAuth2ClientCredentials } from '../auth.js';
import { cachedEntity, defineSource } from '../define-source.js';
import { inIdOrder } from '../paging.js';
import { asError } from '../../errors.js';
import type { OffsetPage, UserEntity, UserPageKey } from '../models.js';
import { IdentitySource } from './identity-source.js';

/** Identity, modelled on the Auth0 Management API v2 (UPSTREAMS.md): OAuth2 client credentials, Lucene search, x-ratelimit-* headers. */
export const identity = defineSource({
  name: 'identity',
  description: 'the identity provider (profiles)',
  env: { url: 'IDENTITY_URL', credentials: { clientId: 'IDENTITY_CLIENT_ID', clientSecret: 'IDENTITY_CLIENT_SECRET', audience: 'IDENTITY_AUDIENCE' } },
  tuning: { rateLimitPerSec: 40, rateLimitBurst: 4 },
  entities: {
    'identity.user': cachedEntity<string, UserEntity | null>()({
      env: 'IDENTITY_USER',
      what: 'a user profile',
      defaults: { ttlMs: 60_000, staleWhileRevalidateMs: 300_000, staleIfErrorMs: 3_600_000 },
      group: (id) => id,
      variant: () => '',
      fetch: async (source: IdentitySource, ids, deadline) => {
        return inIdOrder(ids, await source.usersByIds(ids, deadline), null);
      },
    }),
    'identity.userPage': cachedEntity<UserPageKey, OffsetPage<UserEntity>>()({
      env: 'IDENTITY_USER_PAGE',
      what: 'one window of the list of all users',
      defaults: { ttlMs: 10_000, staleWhileRevalidateMs: 30_000, staleIfErrorMs: 600_000 },
      // A window of the list is its own call; every window is one group, dropped together when a profile changes.
      perKey: true,
      group: () => 'all',
      variant: (k) => `${k.offset}:${k.first}`,
      fetch: (source: IdentitySource, keys, deadline) => Promise.all(keys.map((k) => source.listUsers(k.offset, k.first, deadline).catch(asError))),
    }),
  },
  // Auth0 has no webhooks for profile changes; its user search filters by updated_at (UPSTREAMS.md).
  changeFeed: {
    entity: 'identity.user',
    alsoDrop: [{ entity: 'identity.userPage', groups: ['all'] }],
    topic: 'userUpdated',
    env: 'IDENTITY',
    defaultIntervalMs: 5_000,
    pull: (source: IdentitySource, since, page, deadline) => source.usersChangedSince(since, page, deadline),
  },
  create: (base, endpoint) =>
    new IdentitySource({
      ...base,
      auth: new OAuth2ClientCredentials({
        source: 'identity',
        dispatcher: base.dispatcher,
        tokenPath: `${new URL(endpoint.url).pathname.replace(/\/+$/, '')}/oauth/token`,
        clientId: endpoint.clientId,
        clientSecret: endpoint.clientSecret,
        audience: endpoint.audience,
        timeoutMs: base.timeoutMs,
      }),
    }),
});
