import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Dataset, IdentityUser } from './dataset.js';
import { json, type RateWindow, type Reply, type UpstreamApi, type UpstreamRequest } from './simulated-server.js';
import { SearchLag } from './search-lag.js';
import { UpdatedAtIndex } from './updated-at-index.js';

/**
 * Identity, modelled on the Auth0 Management API v2: OAuth2 client
 * credentials, Lucene search by user_id, 0-based paging, ISO timestamps,
 * x-ratelimit-* headers on every response and a 429 without Retry-After.
 */
export interface IdentityCredentials {
  clientId: string;
  clientSecret: string;
  audience: string;
}

const unauthorized = json(401, { statusCode: 401, error: 'Unauthorized', message: 'Invalid token' });
const badRequest = (message: string, errorCode = 'invalid_query_string') => json(400, { statusCode: 400, error: 'Bad Request', message, errorCode });
const MAX_PER_PAGE = 100;
const MAX_IDS = 100;

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Reads a Lucene term from `start` up to (not including) the character that
 * ends it, with `\x` escapes taken literally; null when the query ends first
 * or an unescaped character is one the term may not hold.
 */
function readTerm(q: string, start: number, ends: (c: string) => boolean, forbidden: (c: string) => boolean = () => false): { value: string; end: number } | null {
  let value = '';
  for (let i = start; ;) {
    const c = q[i];
    if (c === undefined) return null;
    if (c === '\\') {
      const next = q[i + 1];
      if (next === undefined) return null;
      value += next;
      i += 2;
      continue;
    }
    if (ends(c)) return { value, end: i };
    if (forbidden(c)) return null;
    value += c;
    i++;
  }
}

/**
 * Parses the Lucene this API is asked: `field:"v"` or `field:("v1" OR "v2" …)`,
 * with `\"` and `\\` escapes inside the quotes. Anything else is refused.
 */
export function parseLuceneTerms(q: string): { field: string; values: string[] } | null {
  const head = /^\s*(user_id|email):\s*/.exec(q);
  if (!head) return null;
  let i = head[0].length;
  const values: string[] = [];
  const grouped = q[i] === '(';
  if (grouped) i++;
  for (;;) {
    while (q[i] === ' ') i++;
    if (q[i] !== '"') return null;
    i++;
    const phrase = readTerm(q, i, (c) => c === '"');
    if (!phrase) return null;
    i = phrase.end + 1;
    values.push(phrase.value);
    if (!grouped) break;
    while (q[i] === ' ') i++;
    if (q.startsWith('OR', i)) {
      i += 2;
      continue;
    }
    if (q[i] !== ')') return null;
    i++;
    break;
  }
  if (q.slice(i).trim() !== '') return null;
  return { field: head[1]!, values };
}

/** Characters Lucene gives a meaning to; outside quotes they must be escaped with a backslash. */
const LUCENE_SPECIAL = new Set(['+', '-', '&', '|', '!', '(', ')', '{', '}', '[', ']', '^', '"', '~', '*', '?', ':', '\\', '/', ' ']);

/**
 * `updated_at:[<instant> TO *]`, the instant quoted or with Lucene's special
 * characters backslash-escaped (an ISO instant's colons and hyphens included);
 * null when it is not that (an unescaped colon is a syntax error, as in Lucene).
 */
export function parseUpdatedSince(q: string): Date | null {
  const head = /^\s*updated_at:\[/.exec(q);
  if (!head) return null;
  let i = head[0].length;
  const quoted = q[i] === '"';
  const read = quoted
    ? readTerm(q, i + 1, (c) => c === '"')
    : readTerm(
        q,
        i,
        (c) => c === ' ',
        (c) => LUCENE_SPECIAL.has(c) && c !== '-',
      );
  if (!read) return null;
  const term = read.value;
  i = quoted ? read.end + 1 : read.end;
  if (!/^ TO \*\]\s*$/.test(q.slice(i))) return null;
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})?)?$/.test(term)) return null;
  const at = new Date(term);
  return Number.isNaN(at.getTime()) ? null : at;
}

export function identityApi(data: Dataset, credentials: IdentityCredentials, tokenTtlSeconds: number): UpstreamApi {
  const tokens = new Map<string, number>();
  const updated = new UpdatedAtIndex(data);
  const lag = new SearchLag();

  const token = (req: UpstreamRequest): Reply => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const ok =
      body.grant_type === 'client_credentials' &&
      typeof body.client_id === 'string' &&
      typeof body.client_secret === 'string' &&
      sameSecret(body.client_id, credentials.clientId) &&
      sameSecret(body.client_secret, credentials.clientSecret) &&
      body.audience === credentials.audience;
    if (!ok) return json(401, { error: 'access_denied', error_description: 'Unauthorized' });
    const accessToken = randomBytes(24).toString('base64url');
    const now = Date.now();
    tokens.set(accessToken, now + tokenTtlSeconds * 1000);
    for (const [t, exp] of tokens) if (exp <= now) tokens.delete(t);
    return json(200, { access_token: accessToken, token_type: 'Bearer', expires_in: tokenTtlSeconds, scope: 'read:users update:users' });
  };

  const getUser = (req: UpstreamRequest): Reply => {
    const user = data.user(req.params[0]!);
    if (!user) return json(404, { statusCode: 404, error: 'Not Found', message: 'The user does not exist.', errorCode: 'inexistent_user' });
    return json(200, user);
  };

  const listUsers = (req: UpstreamRequest): Reply => {
    const page = Number(req.query.get('page') ?? '0');
    const asked = Number(req.query.get('per_page') ?? '50');
    if (!Number.isInteger(page) || page < 0) return badRequest('Query validation error: page must be a non-negative integer', 'invalid_query_string');
    if (!Number.isInteger(asked) || asked < 1 || asked > MAX_PER_PAGE) {
      return badRequest(`Query validation error: per_page must be 1..${MAX_PER_PAGE}`, 'invalid_query_string');
    }
    const perPage = req.pageCap === null ? asked : Math.min(asked, req.pageCap);
    if (req.resultCap !== null && (page + 1) * perPage > req.resultCap) {
      return badRequest(`You can only page through the first ${req.resultCap} records.`, 'invalid_paging');
    }
    let matched: IdentityUser[] = data.users;
    const q = req.query.get('q');
    const sort = req.query.get('sort');
    const now = Date.now();
    const shown = (user: IdentityUser) => lag.view(user, now);
    if (sort !== null && !/^(created_at|updated_at):(1|-1)$/.test(sort)) return badRequest('Query validation error: sort must be <field>:1 or <field>:-1');
    if (q !== null && /^\s*updated_at:/.test(q)) {
      const since = parseUpdatedSince(q);
      if (!since) return badRequest('Invalid query');
      // Inclusive: a user updated at exactly `since` is listed again.
      matched = updated.since(since.getTime());
      if (lag.any) {
        // As the index holds them: a change it has not taken in yet is not listed, and the version before it may be.
        const listed = new Set(matched.map((u) => u.user_id));
        const earlier = [...lag.changedIds()].filter((id) => !listed.has(id)).flatMap((id) => data.user(id) ?? []);
        matched = [...matched, ...earlier].map(shown).filter((u) => Date.parse(u.updated_at) >= since.getTime());
      }
    } else if (q !== null) {
      const terms = parseLuceneTerms(q);
      if (!terms) return badRequest('Invalid query');
      if (terms.values.length > MAX_IDS) return badRequest(`Too many terms in query (at most ${MAX_IDS})`);
      req.recordBatch(terms.values.length);
      const wanted = new Set(terms.values);
      // The vendor's own order (creation), not the order asked: callers must map by id.
      // By id through the dataset's index, as a real vendor's search index would (a scan of 100,000 users per call made
      // the simulator, not the gateway, the bench's bottleneck on cold lists).
      matched =
        terms.field === 'user_id'
          ? [...wanted]
              .map((id) => data.indexOf(id))
              .filter((i): i is number => i !== undefined)
              .sort((a, b) => a - b)
              .map((i) => data.users[i]!)
          : data.users.filter((u) => wanted.has(u.email));
    }
    if (req.ignoreSort) {
      // The vendor's own order: creation (which the whole list and an id search are in already).
      if (matched !== data.users)
        matched = matched
          .map((user) => ({ user, i: data.indexOf(user.user_id) ?? 0 }))
          .sort((a, b) => a.i - b.i)
          .map((m) => m.user);
    } else if (sort !== null) {
      const [field, direction] = sort.split(':') as ['created_at' | 'updated_at', string];
      const sign = direction === '1' ? 1 : -1;
      if (field === 'created_at') {
        // Every match is in creation order already, and no two users share a created_at: nothing to sort (a sort of
        // 100,000 users parsing two dates a comparison held the simulator's only thread for seconds a page).
        if (sign < 0) matched = [...matched].reverse();
      } else {
        // Stable: users updated in the same millisecond keep the vendor's own order.
        matched = matched
          .map((user) => ({ user, at: Date.parse(user.updated_at) }))
          .sort((a, b) => sign * (a.at - b.at))
          .map((m) => m.user);
      }
    }
    const start = page * perPage;
    const users = matched.slice(start, start + perPage).map(shown);
    if (req.query.get('include_totals') !== 'true') return json(200, users);
    return json(200, { start, limit: perPage, length: users.length, total: matched.length, users });
  };

  const patchUser = (req: UpstreamRequest): Reply => {
    const user = data.user(req.params[0]!);
    if (!user) return json(404, { statusCode: 404, error: 'Not Found', message: 'The user does not exist.', errorCode: 'inexistent_user' });
    const body = req.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return badRequest('Payload validation error: body must be an object', 'invalid_body');
    for (const [key, value] of Object.entries(body)) {
      if (!['name', 'nickname', 'picture'].includes(key)) return badRequest(`Payload validation error: 'Additional properties not allowed: ${key}'`, 'invalid_body');
      if (typeof value !== 'string' || value.length === 0 || value.length > 300)
        return badRequest(`Payload validation error: '${key}' must be a string of 1..300 characters`, 'invalid_body');
    }
    lag.replacing(user, req.searchLagMs);
    Object.assign(user, body, { updated_at: new Date().toISOString() });
    updated.touched(user);
    return json(200, user);
  };

  // `PATCH /__admin/users/<id>`: a profile changed behind the server's back (another app, the vendor's dashboard). Not counted in stats.
  const adminPatchUser = (req: UpstreamRequest): Reply => {
    const { updated_at: updatedAt, ...changes } = (req.body ?? {}) as Record<string, unknown>;
    const reply = patchUser({ ...req, body: changes });
    // `updated_at` may be given (edits in one millisecond, a clock behind ours): the vendor's clock is not the server's.
    if (reply.status === 200 && typeof updatedAt === 'string') {
      Object.assign(reply.body as IdentityUser, { updated_at: updatedAt });
      updated.touched(reply.body as IdentityUser);
    }
    return reply;
  };

  return {
    name: 'identity',
    routes: [
      { method: 'POST', name: 'POST /oauth/token', pattern: /^\/oauth\/token$/, handler: token, public: true },
      {
        method: 'GET',
        name: 'GET /api/v2/users',
        pattern: /^\/api\/v2\/users$/,
        nameFor: (query) => (/^\s*updated_at:/.test(query.get('q') ?? '') ? 'GET /api/v2/users?q=updated_at' : null),
        handler: listUsers,
      },
      { method: 'GET', name: 'GET /api/v2/users/:id', pattern: /^\/api\/v2\/users\/([^/]+)$/, handler: getUser },
      { method: 'PATCH', name: 'PATCH /api/v2/users/:id', pattern: /^\/api\/v2\/users\/([^/]+)$/, handler: patchUser },
    ],
    adminRoutes: [{ method: 'PATCH', name: 'PATCH /__admin/users/:id', pattern: /^\/__admin\/users\/([^/]+)$/, handler: adminPatchUser }],
    authenticate(req) {
      const header = req.headers.authorization;
      if (typeof header !== 'string' || !header.startsWith('Bearer ')) return unauthorized;
      const exp = tokens.get(header.slice(7));
      return exp !== undefined && exp > Date.now() ? null : unauthorized;
    },
    rateLimited: () => json(429, { statusCode: 429, error: 'Too Many Requests', message: 'Global limit has been reached', errorCode: 'too_many_requests' }),
    decorate(reply: Reply, window: RateWindow) {
      reply.headers = {
        ...reply.headers,
        'x-ratelimit-limit': String(window.limit),
        'x-ratelimit-remaining': String(window.remaining),
        'x-ratelimit-reset': String(window.resetSec),
      };
    },
  };
}
