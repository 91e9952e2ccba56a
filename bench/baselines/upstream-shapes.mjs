// What both baselines share: the upstreams' dialects (per UPSTREAMS.md), as any hand-written gateway would have them.
export const env = process.env;

let token = null;
let tokenExpiresAt = 0;
let pending = null;
/** The identity provider's OAuth2 client-credentials token, cached until a minute before it expires. */
export function identityToken() {
  if (token && Date.now() < tokenExpiresAt - 60_000) return Promise.resolve(token);
  pending ??= fetch(`${env.IDENTITY_URL}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ grant_type: 'client_credentials', client_id: env.IDENTITY_CLIENT_ID, client_secret: env.IDENTITY_CLIENT_SECRET, audience: env.IDENTITY_AUDIENCE }),
  })
    .then((r) => r.json())
    .then((j) => {
      token = j.access_token;
      tokenExpiresAt = Date.now() + j.expires_in * 1000;
      return token;
    })
    .finally(() => {
      pending = null;
    });
  return pending;
}

/** The same default window as the gateway: 30 days of DAY buckets up to the end of the current hour. */
export function metricsWindow() {
  const to = Math.ceil(Date.now() / 1000 / 3600) * 3600;
  return { from: to - 30 * 86_400, to, granularity: 'day' };
}

/** Identity's batch lookup by id (UPSTREAMS.md: `q=user_id:("id1" OR …)`, at most 100 ids), as query parameters. */
export function identitySearchParams(ids) {
  const q = `user_id:(${ids.map((id) => `"${id.replace(/[\\"]/g, '\\$&')}"`).join(' OR ')})`;
  return { q, page: '0', per_page: '100', include_totals: 'true' };
}

export const toUser = (u) => (u ? { id: u.user_id, name: u.name ?? null, avatarUrl: u.picture ?? null } : null);
export const toMetrics = (m) => (m ? { pageViews: m.page_views, sessions: m.sessions, conversionRate: m.conversion_rate } : null);
export const toNotification = (n) => ({ id: n.id, title: n.title, read: n.read, createdAt: new Date(n.created).toISOString() });

export function announce(url) {
  console.log(`GraphQL endpoint: ${url}`);
}
