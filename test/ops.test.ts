import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import persisted from '../examples/generated/persisted-documents.json' with { type: 'json' };
import { describeWithRedis, TestRedis } from './helpers/redis.js';
import { calls, stackPool, type Stack, type StackOptions } from './helpers/stack.js';

/** What the people running it rely on: metrics, health, logs, exposure, auth options, per-caller limits. */
type AnyData = Record<string, any>;

const stackWith = stackPool(undefined, { warm: false });

const DASHBOARD = `query Dashboard($id: ID!) { user(id: $id) { name metrics { pageViews } unreadNotificationCount } }`;

describe('metrics, health, request logs', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await stackWith({ cache: { enabled: true } });
  });

  it('/metrics: upstream calls by outcome, latency, cache lookups by tier, operations by name, breakers, queue, process; no ids in labels', async () => {
    const id = stack.userId(300);
    await stack.gql(DASHBOARD, { id });
    await stack.gql(DASHBOARD, { id });
    await stack.faults('analytics', { errorRate: 1 });
    await stack.gql(DASHBOARD, { id: stack.userId(301) });
    await stack.reset();
    const res = await fetch(stack.url.replace('/graphql', '/metrics'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toMatch(/gateway_upstream_requests_total\{source="identity",route="GET \/api\/v2\/users\?q",outcome="ok"\} [1-9]/);
    expect(text).toMatch(/gateway_upstream_requests_total\{source="analytics",route="POST \/v1\/metrics\/query",outcome="SOURCE_UNAVAILABLE"\} [1-9]/);
    expect(text).toMatch(/gateway_upstream_retries_total\{source="analytics",route="POST \/v1\/metrics\/query"\} [1-9]/);
    expect(text).toMatch(/gateway_upstream_request_duration_seconds_bucket\{le="0.05",source="identity"/);
    expect(text).toMatch(/gateway_cache_lookups_total\{entity="identity.user",tier="l1",result="hit"\} [1-9]/);
    expect(text).toMatch(/gateway_cache_lookups_total\{entity="identity.user",tier="l1",result="miss"\} [1-9]/);
    expect(text).toMatch(/gateway_graphql_operations_total\{operation="Dashboard",type="query",outcome="ok"\} 2/);
    expect(text).toMatch(/gateway_graphql_operations_total\{operation="Dashboard",type="query",outcome="error"\} 1/);
    expect(text).toMatch(/gateway_graphql_errors_total\{operation="Dashboard",code="SOURCE_UNAVAILABLE"\} 1/);
    expect(text).toMatch(/gateway_graphql_operation_duration_seconds_count\{operation="Dashboard",type="query"\} 3/);
    expect(text).toMatch(/gateway_circuit_breaker_state\{source="analytics"\} [012]/);
    expect(text).toMatch(/gateway_delivery_queue_jobs\{state="FAILED"\} 0/);
    expect(text).toMatch(/process_cpu_user_seconds_total/);
    expect(text).toMatch(/nodejs_eventloop_lag_seconds/);
    expect(text).not.toContain(id);
    expect(text).not.toContain('auth0|');
  });

  it('a batched request (GRAPHQL_BATCHING): each operation counted under its own name and type, its duration its own', async () => {
    const batched = await stackWith({ cache: { enabled: true }, ops: (o) => ({ ...o, limits: { ...o.limits, batching: true } }) });
    // analytics slow: the batch's Dashboard takes ≥ 300 ms, its Viewer does not ask analytics.
    await batched.faults('analytics', { latencyMs: 300 });
    const res = await fetch(batched.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await batched.token()}` },
      body: JSON.stringify([
        { query: DASHBOARD, variables: { id: batched.userId(310) }, operationName: 'Dashboard' },
        { query: 'query Viewer { viewer { id } }', operationName: 'Viewer' },
      ]),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as unknown[]).length).toBe(2);
    const text = await (await fetch(batched.url.replace('/graphql', '/metrics'))).text();
    expect(text).toMatch(/gateway_graphql_operations_total\{operation="Dashboard",type="query",outcome="ok"\} 1\n/);
    expect(text).toMatch(/gateway_graphql_operations_total\{operation="Viewer",type="query",outcome="ok"\} 1\n/);
    const durationSum = (op: string) => Number(new RegExp(`gateway_graphql_operation_duration_seconds_sum\\{operation="${op}",type="query"\\} ([\\d.e-]+)`).exec(text)![1]);
    expect(durationSum('Dashboard')).toBeGreaterThanOrEqual(0.29);
    expect(durationSum('Viewer')).toBeLessThan(0.29);
  });

  it('operation names are bounded labels: past 200 distinct ones, "other"', async () => {
    for (let i = 0; i < 210; i++) await stack.gql(`query Op${i} { __typename }`);
    const text = await (await fetch(stack.url.replace('/graphql', '/metrics'))).text();
    expect(text).toMatch(/gateway_graphql_operations_total\{operation="other",type="query",outcome="ok"\} ([1-9]\d*)/);
    const names = new Set([...text.matchAll(/gateway_graphql_operations_total\{operation="([^"]+)"/g)].map((m) => m[1]));
    expect(names.size).toBeLessThanOrEqual(202);
  });

  it('/healthz and /readyz; readyz names each source and stays 200 with a source down, naming it degraded', async () => {
    const base = stack.url.replace('/graphql', '');
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    await stack.faults('notifications', { errorRate: 1 });
    await stack.gql(DASHBOARD, { id: stack.userId(302) });
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    const body = (await ready.json()) as AnyData;
    expect(body).toMatchObject({ redis: 'not configured' });
    expect(['ready', 'degraded']).toContain(body.status);
    expect(body.sources.map((s: AnyData) => s.name)).toEqual(['identity', 'analytics', 'notifications', 'audit']);
    expect(body.sources.find((s: AnyData) => s.name === 'notifications').errorRate).toBeGreaterThan(0);
    await stack.reset();
  });

  it('one log line per request with its request id, operation, status and duration; the id comes back in x-request-id', async () => {
    const mine = await stack.gql(DASHBOARD, { id: stack.userId(303) }, { headers: { 'x-request-id': 'trace-abc-123' } });
    expect(mine.headers.get('x-request-id')).toBe('trace-abc-123');
    const made = await stack.gql(`{ __typename }`, undefined, { headers: { 'x-request-id': 'not valid!' } });
    expect(made.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const lines = stack.logs.map((l) => JSON.parse(l) as AnyData).filter((l) => l.msg === 'request');
    const line = lines.find((l) => l.requestId === 'trace-abc-123')!;
    expect(line).toMatchObject({ level: 30, method: 'POST', path: '/graphql', operation: 'Dashboard', status: 200, errors: 0, durationMs: expect.any(Number) });
    // Upstream calls at debug, with source, route, status, attempt and duration.
    const upstream = stack.logs.map((l) => JSON.parse(l) as AnyData).find((l) => l.msg === 'upstream call' && l.source === 'analytics');
    expect(upstream).toMatchObject({ level: 20, route: 'POST /v1/metrics/query', status: 200, attempt: 1, durationMs: expect.any(Number) });
    // Secrets never: the upstream credentials, our signing secret, bearer tokens.
    const all = stack.logs.join('');
    const c = stack.upstreams.credentials;
    for (const secret of [c.identity.clientSecret, c.analyticsApiKey, c.notificationsToken, c.auditApiKey, stack.secret]) expect(all).not.toContain(secret);
    expect(all).not.toMatch(/Bearer [\w-]{8,}/);
  });

  it('a source whose success rate falls below the threshold is logged once, and again when it recovers', async () => {
    const watched = await stackWith({ tuning: { analytics: { retryMaxAttempts: 1, breakerMinCalls: 10_000 } } });
    await watched.faults('analytics', { errorRate: 1 });
    for (let i = 0; i < 12; i++) await watched.gql(DASHBOARD, { id: watched.userId(310 + i) });
    const warned = () => watched.logs.filter((l) => l.includes('analytics: success rate over the last minute is below')).length;
    await expect.poll(warned, { timeout: 8000 }).toBe(1);
    await watched.reset();
    for (let i = 0; i < 120; i++) await watched.gql(DASHBOARD, { id: watched.userId(330 + i) });
    await expect.poll(() => watched.logs.filter((l) => l.includes('analytics: success rate recovered')).length, { timeout: 8000 }).toBe(1);
    expect(warned()).toBe(1);
  });
});

describe('client connections', () => {
  it("an idle connection is kept past Node's 5 s (65 s, and said so): a load balancer that keeps its own 60 s is never closed on", async () => {
    const stack = await stackWith({});
    const socket = connect(Number(new URL(stack.url).port), '127.0.0.1');
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
    let closedAt: number | undefined;
    const openedAt = performance.now();
    socket.on('close', () => (closedAt = performance.now() - openedAt));
    const get = async () => {
      text = '';
      socket.write('GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n');
      for (let i = 0; i < 50 && !text.includes('\r\n\r\n'); i++) await sleep(20);
      return text;
    };
    try {
      const first = await get();
      expect(first).toMatch(/^HTTP\/1\.1 200/);
      expect(first).toMatch(/^keep-alive: timeout=65$/im);
      // Node's default closed it here, and a balancer reusing it got a reset (a 502 to its client).
      await sleep(5_500);
      expect(await get()).toMatch(/^HTTP\/1\.1 200/);
      expect(closedAt).toBeUndefined();
    } finally {
      socket.destroy();
    }
  });
});

describe('compression', () => {
  it('large responses are brotli- or gzip-compressed by Accept-Encoding; small ones and clients that do not ask are not', async () => {
    const stack = await stackWith();
    const big = `{ userList(first: 100) { edges { node { id name nickname avatarUrl } } } }`;
    const ask = async (query: string, encoding: string | null) => {
      const res = await fetch(stack.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${await stack.token()}`, ...(encoding ? { 'accept-encoding': encoding } : {}) },
        body: JSON.stringify({ query }),
      });
      const body = (await res.json()) as AnyData; // fetch decodes it
      return { encoding: res.headers.get('content-encoding'), vary: res.headers.get('vary'), body };
    };
    const br = await ask(big, 'br, gzip');
    expect(br.encoding).toBe('br');
    expect(br.vary).toMatch(/accept-encoding/i);
    expect(br.body.data.userList.edges).toHaveLength(100);
    expect((await ask(big, 'gzip')).encoding).toBe('gzip');
    // Browsers list gzip first; brotli is still preferred. A q of 0 refuses an encoding.
    expect((await ask(big, 'gzip, deflate, br, zstd')).encoding).toBe('br');
    expect((await ask(big, 'br;q=0, gzip')).encoding).toBe('gzip');
    expect((await ask(big, 'identity')).encoding).toBeNull();
    expect((await ask(`{ __typename }`, 'br, gzip')).encoding).toBeNull();
  });
});

describe('production exposure', () => {
  let prod: Stack;
  beforeAll(async () => {
    prod = await stackWith({ ops: (o) => ({ ...o, graphiql: false, introspection: false }) });
  });

  it('introspection and GraphiQL are off; field suggestions too', async () => {
    const intro = await prod.gql<AnyData>('{ __schema { types { name } } }');
    expect(intro.status).toBe(400);
    expect(intro.body.errors![0]!.extensions!.code).toBe('GRAPHQL_VALIDATION_FAILED');
    const page = await fetch(prod.url, { headers: { accept: 'text/html' } });
    expect(await page.text()).not.toContain('<html');
  });

  it('a client mistake is a coded error whose message shows nothing internal', async () => {
    const res = await prod.gql<AnyData>(`{ userList(first: 2, after: "not-a-cursor") { totalCount } }`);
    expect(res.body.errors![0]!.extensions!.code).toBe('BAD_USER_INPUT');
    expect(res.text).not.toMatch(/at .*\.ts:\d+|node_modules|\/work\//);
  });
});

describe('persisted operations', () => {
  it('required: only the allow-list made by codegen from examples/ runs, by hash', async () => {
    const stack = await stackWith({ ops: (o) => ({ ...o, persistedOperationsRequired: true }) });
    const arbitrary = await stack.gql<AnyData>(`{ viewer { id } }`);
    expect(arbitrary.status).toBe(400);
    expect(arbitrary.body.errors![0]!.extensions!.code).toBe('PERSISTED_QUERY_ONLY');
    const [key] = Object.entries(persisted).find(([, doc]) => doc.startsWith('query Sources'))!;
    const res = await fetch(stack.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await stack.token()}` },
      body: JSON.stringify({ extensions: { persistedQuery: { version: 1, sha256Hash: key.replace('sha256:', '') } } }),
    });
    const body = (await res.json()) as AnyData;
    expect(body.errors).toBeUndefined();
    expect(body.data.sources).toHaveLength(4);
  });

  it('automatic persisted queries (on by default): unknown hash → PERSISTED_QUERY_NOT_FOUND; query + hash once; then the hash alone', async () => {
    const stack = await stackWith();
    const query = '{ viewer { id name } }';
    const sha256Hash = createHash('sha256').update(query).digest('hex');
    const send = async (body: unknown) => {
      const res = await fetch(stack.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${await stack.token()}` },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as AnyData };
    };
    const extensions = { persistedQuery: { version: 1, sha256Hash } };
    const miss = await send({ extensions });
    expect(miss.body.errors[0].extensions.code).toBe('PERSISTED_QUERY_NOT_FOUND');
    expect(miss.body.errors[0].message).toBe('PersistedQueryNotFound');
    const register = await send({ query, extensions });
    expect(register.body.data.viewer.id).toBe(stack.userId(0));
    const hit = await send({ extensions });
    expect(hit.body).toEqual(register.body);
    const wrong = await send({ query: '{ viewer { id } }', extensions });
    expect(wrong.status).toBe(400);
  });
});

describe('auth options', () => {
  let jwks: Server;
  let jwksUrl: string;
  let privateKey: CryptoKey;
  let stack: Stack;
  beforeAll(async () => {
    const pair = await generateKeyPair('RS256', { extractable: true });
    privateKey = pair.privateKey as CryptoKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'key-1', alg: 'RS256', use: 'sig' };
    jwks = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })));
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
    jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`;
    stack = await stackWith({ ops: (o) => ({ ...o, auth: { jwksUrl, issuer: 'https://idp.example.com/', audience: 'gateway', clockToleranceSec: 30 } }) });
  });
  afterAll(() => new Promise<void>((r) => jwks.close(() => r())));

  const sign = (claims: { iss?: string; aud?: string; exp?: number; sub?: string }, key?: CryptoKey | Uint8Array, alg = 'RS256') =>
    new SignJWT({ scope: 'admin' })
      .setProtectedHeader({ alg, kid: 'key-1' })
      .setSubject(claims.sub ?? 'someone')
      .setIssuer(claims.iss ?? 'https://idp.example.com/')
      .setAudience(claims.aud ?? 'gateway')
      .setExpirationTime(claims.exp ?? Math.floor(Date.now() / 1000) + 600)
      .sign(key ?? privateKey);

  it('RS256 through a JWKS URL, with issuer, audience and clock-skew checks', async () => {
    const ok = await stack.gql<AnyData>('{ __typename }', undefined, { token: await sign({}) });
    expect(ok.status).toBe(200);
    const skewed = await stack.gql<AnyData>('{ __typename }', undefined, { token: await sign({ exp: Math.floor(Date.now() / 1000) - 10 }) });
    expect(skewed.status).toBe(200); // 10 s past exp, within the 30 s tolerance
    for (const token of [
      await sign({ aud: 'someone-else' }),
      await sign({ iss: 'https://evil.example.com/' }),
      await sign({ exp: Math.floor(Date.now() / 1000) - 120 }),
      await sign({}, new TextEncoder().encode('a'.repeat(32)), 'HS256'), // the alg-confusion forgery
      (await sign({})).replace(/\.[\w-]+$/, '.AAAA'),
    ]) {
      const res = await stack.gql<AnyData>('{ __typename }', undefined, { token });
      expect(res.status).toBe(401);
      expect(res.body.errors![0]!.extensions!.code).toBe('UNAUTHENTICATED');
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
  });

  it('CORS: only configured origins', async () => {
    const cors = await stackWith({ ops: (o) => ({ ...o, corsOrigins: ['https://app.example.com'] }) });
    const allowed = await fetch(cors.url, { method: 'OPTIONS', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' } });
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    const other = await fetch(cors.url, { method: 'OPTIONS', headers: { origin: 'https://evil.example.com', 'access-control-request-method': 'POST' } });
    expect(other.headers.get('access-control-allow-origin')).not.toBe('https://evil.example.com');
    const none = await fetch(stack.url, { method: 'OPTIONS', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' } });
    expect(none.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('per-caller rate limit', () => {
  it('over its budget a caller gets 429 with Retry-After, reaching no upstream; other callers are unaffected', async () => {
    const stack = await stackWith({ ops: (o) => ({ ...o, callerRateLimit: { perSec: 0.5, burst: 3 } }) });
    const greedy = await stack.token({ sub: stack.userId(400), admin: false });
    const q = `query($id: ID!) { user(id: $id) { name } }`;
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await stack.gql<AnyData>(q, { id: stack.userId(400) }, { token: greedy }));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 429, 429]);
    expect(Number(answers[3]!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(answers[3]!.body.errors![0]!.extensions).toMatchObject({ code: 'RATE_LIMITED', retryAfterSeconds: expect.any(Number) });
    expect(calls(await stack.stats('identity'), 'GET /api/v2/users')).toBe(3);
    const other = await stack.gql<AnyData>(q, { id: stack.userId(401) }, { token: await stack.token({ sub: stack.userId(401), admin: false }) });
    expect(other.status).toBe(200);
  });
});

describeWithRedis('readiness with Redis', () => {
  const redis = new TestRedis();
  beforeAll(() => redis.start());
  afterAll(() => redis.stop());

  it('the per-caller limit is one budget across instances, through Redis', async () => {
    const limited = (o: Parameters<NonNullable<StackOptions['ops']>>[0]) => ({ ...o, callerRateLimit: { perSec: 0.5, burst: 3 } });
    const a = await stackWith({ redis: { url: redis.url, keyPrefix: 'gwcaller:' }, ops: limited });
    const b = await stackWith({ redis: { url: redis.url, keyPrefix: 'gwcaller:' }, ops: limited, peerOf: a });
    await expect.poll(() => a.gateway.redis!.available && b.gateway.redis!.available).toBe(true);
    const caller = await a.token({ sub: a.userId(410), admin: false });
    const statuses = [];
    for (const stack of [a, b, a, b]) statuses.push((await stack.gql(`{ viewer { id } }`, undefined, { token: caller })).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
  });

  it('ready (degraded) while the configured Redis is unreachable, serving from L1; not degraded when it returns', async () => {
    const stack = await stackWith({ redis: { url: redis.url }, cache: { enabled: true } });
    const readyz = () => fetch(stack.url.replace('/graphql', '/readyz')).then(async (r) => ({ status: r.status, body: (await r.json()) as AnyData }));
    await expect.poll(async () => (await readyz()).body.status, { timeout: 5000 }).toBe('ready');
    const id = stack.userId(411);
    const query = `query($id: ID!) { user(id: $id) { id name metrics { pageViews } unreadNotificationCount } }`;
    expect((await stack.gql<AnyData>(query, { id })).body.errors).toBeUndefined();
    await redis.stop();
    await expect.poll(async () => (await readyz()).body.redis, { timeout: 5000 }).toBe('unreachable');
    const degraded = await readyz();
    expect(degraded.status).toBe(200);
    expect(degraded.body.status).toBe('degraded');
    expect(degraded.body.degraded.join(' ')).toMatch(/redis: unreachable/);
    // Every query still answers, from L1 and the vendors.
    for (const i of [411, 412]) {
      const res = await stack.gql<AnyData>(query, { id: stack.userId(i) });
      expect(res.status).toBe(200);
      expect(res.body.errors).toBeUndefined();
      expect(res.body.data!.user.metrics.pageViews).toBeTypeOf('number');
    }
    await redis.start();
    await expect.poll(async () => (await readyz()).body.status, { timeout: 10_000 }).toBe('ready');
  });
});
