import { createHash } from 'node:crypto';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { request } from 'undici';
import { beforeAll, describe, expect, it } from 'vitest';
import { calls, READ_ROUTES, stackPool, type Stack } from './helpers/stack.js';

/**
 * The response cache's hit path in the HTTP layer (src/http/cached-responses.ts):
 * a repeat is answered before yoga with the stored bytes, and still gets the
 * caller limit, metrics, request id, log line, CORS and compression a yoga
 * answer gets. Which path answered is read off the request log line
 * (`responseCache: "hit"`), hits off /metrics, upstream calls off the vendors' stats.
 */
const ORIGIN = 'https://app.example.com';
const ME = `query Me { viewer { id name email metrics { pageViews sessions } unreadNotificationCount notifications(first: 3) { totalCount edges { node { id title } } } } }`;
const stackWith = stackPool((options) => ({
  ...options,
  cache: { enabled: true, ...options.cache },
  ops: (defaults) => ({ ...defaults, corsOrigins: [ORIGIN], compression: { thresholdBytes: 100 }, callerRateLimit: { perSec: 1, burst: 8 } }),
}));

const withoutApq = stackPool((options) => ({
  ...options,
  cache: { enabled: true },
  ops: (defaults) => ({ ...defaults, apq: false, callerRateLimit: { perSec: 1000, burst: 1000 } }),
}));

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

async function post(stack: Stack, token: string, body: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await request(stack.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, ...headers },
    body: JSON.stringify(body),
  });
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(res.headers)) flat[name] = Array.isArray(value) ? value.join(', ') : String(value);
  return { status: res.statusCode, headers: flat, body: Buffer.from(await res.body.arrayBuffer()) };
}

async function responseHits(stack: Stack): Promise<number> {
  const text = await (await fetch(stack.url.replace('/graphql', '/metrics'))).text();
  return Number(text.match(/gateway_cache_lookups_total\{entity="response",tier="l1",result="hit"\} (\d+)/)?.[1] ?? 0);
}

/** The request log line written for a request id, parsed. */
function requestLine(stack: Stack, requestId: string): Record<string, unknown> | undefined {
  for (const line of stack.logs) {
    if (!line.includes(requestId)) continue;
    const parsed = JSON.parse(line) as Record<string, unknown>;
    if (parsed.msg === 'request') return parsed;
  }
  return undefined;
}

/** The headers a client sees, without the ones that differ per response. */
function stableHeaders(headers: Record<string, string>): Record<string, string> {
  const { date: _date, 'x-request-id': _id, 'keep-alive': _keepAlive, connection: _connection, ...rest } = headers;
  return rest;
}

describe('response-cache hits in the HTTP layer', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await stackWith();
  });

  /** A token for a user of its own (the caller limit is per subject), and the query asked until it is kept. */
  async function kept(index: number, body: unknown = { query: ME }, headers: Record<string, string> = {}) {
    const token = await stack.token({ sub: stack.userId(index), admin: false });
    const first = await post(stack, token, body, { ...headers, 'x-request-id': `miss-${index}` }); // fetched: not kept
    const second = await post(stack, token, body, { ...headers, 'x-request-id': `keep-${index}` }); // all L1: executed, kept
    expect(first.status).toBe(200);
    expect(JSON.parse(second.body.toString()).errors).toBeUndefined();
    return { token, second };
  }

  it('a repeat is answered before yoga with the bytes and headers yoga answered it with, one vendor call in all', async () => {
    const { token, second } = await kept(10);
    const hitsBefore = await responseHits(stack);
    const third = await post(stack, token, { query: ME }, { 'x-request-id': 'hit-10' });
    expect(third.status).toBe(200);
    expect(third.body.equals(second.body)).toBe(true);
    expect(stableHeaders(third.headers)).toEqual(stableHeaders(second.headers));
    expect(third.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(third.headers['x-request-id']).toBe('hit-10');
    expect(await responseHits(stack)).toBe(hitsBefore + 1);
    expect(requestLine(stack, 'hit-10')).toMatchObject({ responseCache: 'hit', operation: 'Me', status: 200, path: '/graphql' });
    // The yoga-built answers carry no such mark.
    expect(requestLine(stack, 'keep-10')?.responseCache).toBeUndefined();
    expect(calls(await stack.stats('identity'), READ_ROUTES.search)).toBeGreaterThanOrEqual(1);
    const before = await stack.stats('analytics');
    await post(stack, token, { query: ME });
    expect((await stack.stats('analytics')).totalCalls).toBe(before.totalCalls);
  });

  it("a hit for one caller is never another caller's: the key holds the subject and its scope", async () => {
    const { second } = await kept(11);
    const other = await stack.token({ sub: stack.userId(12), admin: false });
    const theirs = await post(stack, other, { query: ME }, { 'x-request-id': 'other-12' });
    expect(JSON.parse(theirs.body.toString()).data.viewer.id).toBe(stack.userId(12));
    expect(JSON.parse(second.body.toString()).data.viewer.id).toBe(stack.userId(11));
    expect(requestLine(stack, 'other-12')?.responseCache).toBeUndefined();
    const admin = await stack.token({ sub: stack.userId(11), admin: true });
    await post(stack, admin, { query: ME }, { 'x-request-id': 'admin-11' });
    expect(requestLine(stack, 'admin-11')?.responseCache).toBeUndefined();
  });

  it('an expired or forged token is refused with 401 even when the response is kept', async () => {
    await kept(13);
    const expired = await stack.token({ sub: stack.userId(13), admin: false, expiresIn: Math.floor(Date.now() / 1000) - 60 });
    const refused = await post(stack, expired, { query: ME });
    expect(refused.status).toBe(401);
    expect(JSON.parse(refused.body.toString()).errors[0].extensions.code).toBe('UNAUTHENTICATED');
    const { token } = await kept(13);
    const forged = `${token.slice(0, -4)}AAAA`;
    expect((await post(stack, forged, { query: ME })).status).toBe(401);
  });

  it('the caller limit holds on hits: past the burst, 429 with Retry-After and RATE_LIMITED, as yoga answers it', async () => {
    const { token } = await kept(14);
    const statuses: number[] = [];
    let refusal: Answer | undefined;
    for (let i = 0; i < 10; i++) {
      const answer = await post(stack, token, { query: ME }, { 'x-request-id': `limit-14-${i}` });
      statuses.push(answer.status);
      if (answer.status === 429) refusal ??= answer;
    }
    // A burst of 8 at 1/s: the two that kept the response and six hits, then refusals.
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(6);
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(7);
    expect(refusal).toBeDefined();
    expect(Number(refusal!.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(refusal!.body.toString()).errors[0].extensions).toMatchObject({ code: 'RATE_LIMITED' });
    // yoga's refusal of a query it runs (not kept: a listing) has the same shape.
    const viaYoga = await post(stack, token, { query: '{ userList(first: 1) { totalCount } }' });
    expect(viaYoga.status).toBe(429);
    expect(Object.keys(JSON.parse(viaYoga.body.toString()).errors[0].extensions).sort()).toEqual(Object.keys(JSON.parse(refusal!.body.toString()).errors[0].extensions).sort());
  });

  it('CORS: an allowed origin gets the headers yoga gives it; another origin is left to yoga', async () => {
    const { token, second } = await kept(15, { query: ME }, { origin: ORIGIN });
    const hit = await post(stack, token, { query: ME }, { origin: ORIGIN, 'x-request-id': 'cors-15' });
    expect(requestLine(stack, 'cors-15')?.responseCache).toBe('hit');
    expect(hit.headers['access-control-allow-origin']).toBe(ORIGIN);
    expect(stableHeaders(hit.headers)).toEqual(stableHeaders(second.headers));
    await post(stack, token, { query: ME }, { origin: 'https://evil.example.com', 'x-request-id': 'cors-evil-15' });
    expect(requestLine(stack, 'cors-evil-15')?.responseCache).toBeUndefined();
  });

  it('compression: br and gzip by Accept-Encoding, each made once per kept response, the same JSON inside', async () => {
    const { token, second } = await kept(16);
    const plain = second.body;
    const br = await post(stack, token, { query: ME }, { 'accept-encoding': 'gzip, br', 'x-request-id': 'br-16' });
    expect(requestLine(stack, 'br-16')?.responseCache).toBe('hit');
    expect(br.headers['content-encoding']).toBe('br');
    expect(br.headers.vary).toBe('Accept-Encoding');
    expect(brotliDecompressSync(br.body).equals(plain)).toBe(true);
    const gzip = await post(stack, token, { query: ME }, { 'accept-encoding': 'gzip' });
    expect(gzip.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(gzip.body).equals(plain)).toBe(true);
    expect(Number(gzip.headers['content-length'])).toBe(gzip.body.length);
  });

  it('Accept: graphql-response+json is honoured; an event stream or a batch goes to yoga', async () => {
    const { token } = await kept(17);
    const typed = await post(stack, token, { query: ME }, { accept: 'application/graphql-response+json', 'x-request-id': 'typed-17' });
    expect(requestLine(stack, 'typed-17')?.responseCache).toBe('hit');
    expect(typed.headers['content-type']).toBe('application/graphql-response+json; charset=utf-8');
    const stream = await post(stack, token, { query: ME }, { accept: 'text/event-stream', 'x-request-id': 'sse-17' });
    expect(stream.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(requestLine(stack, 'sse-17')?.responseCache).toBeUndefined();
  });

  it('a persisted query sent by hash alone is answered from the response its text was kept under', async () => {
    const { token } = await kept(18);
    const sha256Hash = createHash('sha256').update(ME).digest('hex');
    const byHash = await post(stack, token, { extensions: { persistedQuery: { version: 1, sha256Hash } } }, { 'x-request-id': 'apq-18' });
    expect(byHash.status).toBe(200);
    expect(requestLine(stack, 'apq-18')?.responseCache).toBe('hit');
    expect(JSON.parse(byHash.body.toString()).data.viewer.id).toBe(stack.userId(18));
  });

  it('with APQ off, a hash alone is left to yoga, which refuses it, even when the response its text made is kept', async () => {
    const noApq = await withoutApq();
    const token = await noApq.token({ sub: noApq.userId(30), admin: false });
    for (let i = 0; i < 3; i++) await post(noApq, token, { query: ME });
    const sha256Hash = createHash('sha256').update(ME).digest('hex');
    const byHash = await post(noApq, token, { extensions: { persistedQuery: { version: 1, sha256Hash } } }, { 'x-request-id': 'no-apq-30' });
    expect(requestLine(noApq, 'no-apq-30')?.responseCache).toBeUndefined();
    expect(JSON.parse(byHash.body.toString()).data).toBeUndefined();
  });

  it('different variables are a different response', async () => {
    const query = `query One($id: ID!) { user(id: $id) { id name } }`;
    const token = await stack.token({ sub: stack.userId(19), admin: true });
    for (let i = 0; i < 3; i++) await post(stack, token, { query, variables: { id: stack.userId(20) } });
    const other = await post(stack, token, { query, variables: { id: stack.userId(21) } }, { 'x-request-id': 'vars-19' });
    expect(JSON.parse(other.body.toString()).data.user.id).toBe(stack.userId(21));
    expect(requestLine(stack, 'vars-19')?.responseCache).toBeUndefined();
  });
});
