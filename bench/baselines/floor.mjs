/**
 * Not a peer: a bound. The least any gateway must do to answer the bench's two
 * queries from these vendors — read the request, make the vendor calls, parse
 * their JSON, write the answer — with nothing else: no GraphQL (it knows the two
 * queries by their variables), no validation of what vendors send, no cache, no
 * limits, no retries, no logs. undici's pool, as our server uses.
 *
 * FLOOR_BATCH_MS unset: every request makes its own calls, as Apollo's
 * DataLoader does (`floor`). FLOOR_BATCH_MS=2 (`floor-batched`): ids from every
 * request within 2 ms share one call per bulk endpoint (100 ids a call at most),
 * as our cross-request batcher does. What either costs a cold query is the CPU
 * the vendors' answers take to read, whoever reads them.
 */
import { createServer } from 'node:http';
import { Pool } from 'undici';
import { announce, env, identitySearchParams, identityToken, metricsWindow, toMetrics, toNotification, toUser } from './upstream-shapes.mjs';

const BATCH_MS = env.FLOOR_BATCH_MS === undefined ? null : Number(env.FLOOR_BATCH_MS);
const MAX_IDS = 100;
const pools = new Map();
const pool = (base) => {
  let p = pools.get(base);
  if (!p) pools.set(base, (p = new Pool(base, { connections: 128, pipelining: 1 })));
  return p;
};

async function call(base, path, { method = 'GET', headers = {}, body } = {}) {
  const res = await pool(base).request({ path, method, headers, body });
  const text = await res.body.text();
  return { json: JSON.parse(text), headers: res.headers };
}

const fetchUsers = async (ids) => {
  const { json } = await call(env.IDENTITY_URL, `/api/v2/users?${new URLSearchParams(identitySearchParams(ids))}`, {
    headers: { authorization: `Bearer ${await identityToken()}` },
  });
  const byId = new Map(json.users.map((u) => [u.user_id, u]));
  return ids.map((id) => toUser(byId.get(id)));
};

const fetchMetrics = async (ids) => {
  const { json } = await call(env.ANALYTICS_URL, '/v1/metrics/query', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': env.ANALYTICS_API_KEY },
    body: JSON.stringify({ user_ids: ids, ...metricsWindow() }),
  });
  const byId = new Map(json.data.map((m) => [m.user_id, m]));
  return ids.map((id) => toMetrics(byId.get(id)));
};

const fetchUnread = async (ids) => {
  const { json } = await call(env.NOTIFICATIONS_URL, `/v1/unread-counts?user_ids=${ids.map(encodeURIComponent).join(',')}`, {
    headers: { authorization: `Bearer ${env.NOTIFICATIONS_TOKEN}` },
  });
  return ids.map((id) => json.counts[id] ?? 0);
};

/** One call per request for its ids, or (FLOOR_BATCH_MS) one for every request's ids within the window. */
function loader(fetchMany) {
  if (BATCH_MS === null) return fetchMany;
  let pending = null;
  return (ids) =>
    Promise.all(
      ids.map((id) => {
        if (!pending) {
          const batch = (pending = new Map());
          setTimeout(() => {
            pending = null;
            const all = [...batch.keys()];
            for (let i = 0; i < all.length; i += MAX_IDS) {
              const part = all.slice(i, i + MAX_IDS);
              fetchMany(part).then(
                (values) => part.forEach((k, j) => batch.get(k).forEach((w) => w.resolve(values[j]))),
                (e) => part.forEach((k) => batch.get(k).forEach((w) => w.reject(e))),
              );
            }
          }, BATCH_MS);
        }
        return new Promise((resolve, reject) => {
          const waiters = pending.get(id);
          if (waiters) waiters.push({ resolve, reject });
          else pending.set(id, [{ resolve, reject }]);
        });
      }),
    );
}

const users = loader(fetchUsers);
const metrics = loader(fetchMetrics);
const unread = loader(fetchUnread);

async function notifications(id, first) {
  const { json, headers } = await call(env.NOTIFICATIONS_URL, `/v1/users/${encodeURIComponent(id)}/notifications?page=1&per_page=${first}&unread=false`, {
    headers: { authorization: `Bearer ${env.NOTIFICATIONS_TOKEN}` },
  });
  return { totalCount: Number(headers['x-total-count']), edges: json.map((n) => ({ node: toNotification(n) })) };
}

/** The bench's list query: `users(ids) { name metrics { pageViews } unreadNotificationCount }`. */
async function list(ids) {
  const [u, m, c] = await Promise.all([users(ids), metrics(ids), unread(ids)]);
  return { users: u.map((user, i) => user && { name: user.name, metrics: m[i] && { pageViews: m[i].pageViews }, unreadNotificationCount: c[i] }) };
}

/** The bench's dashboard query: one user's profile, metrics, unread count and first 5 notifications. */
async function dashboard(id) {
  const [[u], [m], [c], n] = await Promise.all([users([id]), metrics([id]), unread([id]), notifications(id, 5)]);
  return { user: u && { ...u, metrics: m, unreadNotificationCount: c, notifications: n } };
}

const server = createServer(async (req, res) => {
  try {
    let body = '';
    for await (const chunk of req) body += chunk;
    const { variables } = JSON.parse(body);
    const data = Array.isArray(variables?.ids) ? await list(variables.ids) : await dashboard(String(variables?.id));
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ data }));
  } catch (e) {
    res.writeHead(502, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ message: String(e) }] }));
  }
});
server.listen(Number(env.PORT ?? 0), '127.0.0.1', () => announce(`http://127.0.0.1:${server.address().port}/graphql`));
