import { SignJWT } from 'jose';
import {
  getNamedType,
  isEnumType,
  isInputObjectType,
  isListType,
  isNonNullType,
  isObjectType,
  isScalarType,
  type GraphQLField,
  type GraphQLInputType,
  type GraphQLObjectType,
} from 'graphql';
import { afterEach, describe, expect, it } from 'vitest';
import { buildSchema } from '../src/schema.js';
import { sharedStack, stackPool, type GraphQLResponse } from './helpers/stack.js';

/**
 * Hostile input: each case must get a 4xx or a coded GraphQL error, never a
 * 5xx, never internals in a message — and the server must answer a good
 * query right after.
 */
type AnyData = Record<string, any>;

const stack = sharedStack({ ops: (o) => ({ ...o, auth: { ...o.auth, audience: 'gateway' } }) });

const INTERNALS = /at [\w.<>]+ \(|node_modules|\/work\/|\.ts:\d+|TypeError|ReferenceError|SyntaxError: Unexpected token|ECONNREFUSED|stack/;
const KNOWN_CODES = new Set([
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_USER_INPUT',
  'BAD_REQUEST',
  'PAYLOAD_TOO_LARGE',
  'REQUEST_TIMEOUT',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'RATE_LIMITED',
  'PERSISTED_QUERY_NOT_FOUND',
  'SOURCE_TIMEOUT',
  'SOURCE_UNAVAILABLE',
  'SOURCE_RATE_LIMITED',
  'SOURCE_CIRCUIT_OPEN',
  'SOURCE_BAD_RESPONSE',
  'SOURCE_AUTH_FAILED',
]);

const withResponseCache = stackPool((o) => ({ cache: { enabled: true }, ...o }));

const token = (claims: Record<string, unknown>, secret: string, exp: number | string = '10m') =>
  new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(String(claims.sub ?? 'attacker'))
    .setExpirationTime(exp)
    .sign(new TextEncoder().encode(secret));
const goodToken = () => token({ scope: 'admin', aud: 'gateway', sub: stack.userId(0) }, stack.secret);

/** A 4xx, or a 200 whose every error is coded; nothing internal in any message. */
function expectRefusedCleanly(res: { status: number; text: string; body: GraphQLResponse['body'] }): void {
  expect(res.status).toBeLessThan(500);
  expect(res.text).not.toMatch(INTERNALS);
  if (res.status === 200) for (const e of res.body.errors ?? []) expect(KNOWN_CODES, e.message).toContain(e.extensions?.code);
  else expect(res.body.errors?.[0]?.extensions?.code ?? 'BAD_REQUEST').toEqual(expect.any(String));
}

async function post(body: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string; body: GraphQLResponse['body'] }> {
  const res = await fetch(stack.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${await goodToken()}`, ...headers }, body });
  const text = await res.text();
  let parsed: GraphQLResponse['body'] = {};
  try {
    parsed = JSON.parse(text) as GraphQLResponse['body'];
  } catch {
    // A non-JSON 4xx is fine; the checks look at status and text.
  }
  return { status: res.status, text, body: parsed };
}

const gql = async (query: string, variables?: Record<string, unknown>, t?: string | null) =>
  stack.gql<AnyData>(query, variables, { token: t === undefined ? await goodToken() : t });

/** After every hostile request: the server still answers a good one. */
afterEach(async () => {
  const res = await gql(`query($id: ID!) { user(id: $id) { id name } }`, { id: stack.userId(1) });
  expect(res.status).toBe(200);
  expect(res.body.data!.user.id).toBe(stack.userId(1));
});

describe('malformed and oversized documents', () => {
  it('a syntax error', async () => {
    const res = await gql('{ viewer { id ');
    expect(res.status).toBe(400);
    expect(res.body.errors![0]!.extensions!.code).toBe('GRAPHQL_PARSE_FAILED');
  });

  it('an unknown field', async () => {
    const res = await gql('{ viewer { passwordHash } }');
    expect(res.status).toBe(400);
    expect(res.body.errors![0]!.extensions!.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  it('1,000-deep nesting', async () => {
    const res = await gql('{ viewer ' + '{ notifications '.repeat(1000) + '{ totalCount }' + ' }'.repeat(1000) + ' }');
    expect(res.status).toBe(400);
    expectRefusedCleanly(res);
  });

  it('10,000 aliases (refused for its size), and 100 in a small body (refused for its aliases)', async () => {
    const huge = await gql(`{ ${Array.from({ length: 10_000 }, (_, i) => `a${i}: viewer { id }`).join(' ')} }`);
    expect(huge.status).toBe(413);
    expectRefusedCleanly(huge);
    const many = await gql(`{ ${Array.from({ length: 100 }, (_, i) => `a${i}: viewer { id }`).join(' ')} }`);
    expect(many.status).toBe(400);
    expect(many.body.errors![0]!.extensions!.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(many.body.errors![0]!.message).toMatch(/Aliases limit/);
    expect((await stack.stats('identity')).totalCalls).toBe(0);
  });

  it('a 5 MB body', async () => {
    const res = await post(JSON.stringify({ query: `{ viewer { id } }`, variables: { pad: 'x'.repeat(5 * 1024 * 1024) } }));
    expect(res.status).toBe(413);
    expectRefusedCleanly(res);
  });

  it('JSON nested 6,000 deep in variables or extensions, or 400 in a GET: 400 BAD_REQUEST, nothing at error level; 64 levels run', async () => {
    // With the response cache on, whose key stringifies the variables.
    const cached = await withResponseCache();
    const auth = { authorization: `Bearer ${await cached.token({ sub: cached.userId(1), admin: false })}` };
    const nested = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
    const query = 'query($id: ID!) { user(id: $id) { name } }';
    const send = (body: string) => fetch(cached.url, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body });
    const refused = [
      await send(`{"query":${JSON.stringify(query)},"variables":{"id":"${cached.userId(1)}","x":${nested(6000)}}}`),
      await send(`{"query":${JSON.stringify(query)},"variables":{"id":${nested(6000)}}}`),
      await send(`{"query":"{ viewer { id } }","extensions":${nested(6000)}}`),
      // A GET's URL is bounded by the header limit: 400 levels encoded fit, past the 64 allowed.
      await fetch(`${cached.url}?query=${encodeURIComponent(query)}&variables=${encodeURIComponent(`{"id":"${cached.userId(1)}","x":${nested(400)}}`)}`, { headers: auth }),
    ];
    // The cache key's JSON.stringify threw: INTERNAL_SERVER_ERROR, and two stacks at error level a request.
    for (const res of refused) {
      expect(res.status).toBe(400);
      expect(((await res.json()) as AnyData).errors[0].extensions.code).toBe('BAD_REQUEST');
    }
    expect(cached.logs.filter((l) => l.includes('"level":50'))).toEqual([]);
    // The body, its variables and 62 levels under `x`: 64 in all, run.
    const within = await send(`{"query":${JSON.stringify(query)},"variables":{"id":"${cached.userId(1)}","x":${nested(62)}}}`);
    expect(((await within.json()) as AnyData).data.user.name).toBe(cached.upstreams.dataset.users[1]!.name);
  });

  it('a body that is not JSON, and a batch (off by default)', async () => {
    expectRefusedCleanly(await post('{"query": "{ viewer { id } }"'));
    const batch = await post(JSON.stringify([{ query: '{ viewer { id } }' }, { query: '{ viewer { id } }' }]));
    expect(batch.status).toBe(400);
  });

  it('many directives', async () => {
    const res = await gql(`{ viewer { id ${'@include(if: true) '.repeat(500)} } }`);
    expectRefusedCleanly(res);
    expect(res.status).toBe(400);
  });
});

describe('bad variables', () => {
  it.each([
    ['a string for an Int', `query($n: Int) { userList(first: $n) { totalCount } }`, { n: 'ten' }],
    ['an object for an ID', `query($id: ID!) { user(id: $id) { id } }`, { id: { $gt: '' } }],
    ['null for a non-null', `query($id: ID!) { user(id: $id) { id } }`, { id: null }],
    ['an unknown enum value', `query($g: Granularity) { viewer { metrics(granularity: $g) { pageViews } } }`, { g: 'WEEK' }],
    ['a huge Int', `query($n: Int) { userList(first: $n) { totalCount } }`, { n: 2 ** 53 }],
  ])('%s', async (_what, query, variables) => {
    const res = await gql(query, variables);
    expectRefusedCleanly(res);
    expect(res.body.errors![0]!.extensions!.code).toBe('BAD_USER_INPUT');
  });
});

describe('tokens', () => {
  it.each([
    ['missing', async () => null],
    ['expired', async () => token({ aud: 'gateway', scope: 'admin' }, stack.secret, Math.floor(Date.now() / 1000) - 3600)],
    ['forged (another secret)', async () => token({ aud: 'gateway', scope: 'admin' }, 'not-the-secret-not-the-secret-not-the-secret')],
    ['for another audience', async () => token({ aud: 'someone-else', scope: 'admin' }, stack.secret)],
    [
      'unsigned (alg none)',
      async () =>
        `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'x', scope: 'admin', aud: 'gateway', exp: 9e9 })).toString('base64url')}.`,
    ],
    ['garbage', async () => 'not.a.jwt'],
  ])('%s → 401 UNAUTHENTICATED', async (_what, make) => {
    const res = await gql('{ viewer { id } }', undefined, await make());
    expect(res.status).toBe(401);
    expect(res.body.errors![0]!.extensions!.code).toBe('UNAUTHENTICATED');
    expectRefusedCleanly(res);
  });

  it("another user's private fields → FORBIDDEN, public ones still answer", async () => {
    const mine = await token({ aud: 'gateway', sub: stack.userId(5) }, stack.secret);
    const res = await gql(`query($id: ID!) { user(id: $id) { name email metrics { pageViews } } }`, { id: stack.userId(6) }, mine);
    expect(res.body.data!.user.name).toEqual(expect.any(String));
    expect(res.body.data!.user.email).toBeNull();
    expect(res.body.errors!.map((e) => e.extensions!.code)).toEqual(['FORBIDDEN', 'FORBIDDEN']);
  });
});

describe('injection through ids', () => {
  const KNOWN_ROUTES = new Set([
    'GET /api/v2/users',
    'GET /api/v2/users/:id',
    'POST /oauth/token',
    'POST /v1/metrics/query',
    'GET /v1/users/:id/events',
    'GET /v1/users/:id/notifications',
    'GET /v1/unread-counts',
  ]);

  it.each([
    ['../../admin'],
    ['..%2F..%2Fadmin'],
    ['") OR *'],
    ['x" OR user_id:*'],
    ['*'],
    ['OR *'],
    ['a\\"b'],
    ['id?page=9&per_page=100'],
    ['%00'],
    ['auth0|x/../../__admin/faults'],
  ])('%s reaches no unintended route or query', async (id) => {
    const res = await gql(
      `query($id: ID!) { user(id: $id) { id name } users(ids: [$id]) { id } other: user(id: "auth0|nobody") { id metrics { pageViews } unreadNotificationCount notifications(first: 1) { totalCount } events(first: 1) { edges { node { id } } } } }`,
      { id },
    );
    expectRefusedCleanly(res);
    // No user matches a hostile id: the Lucene phrase is escaped, so "OR *" cannot widen the search.
    expect(res.body.data!.user).toBeNull();
    expect(res.body.data!.users).toEqual([null]);
    const direct = await gql(
      `query($id: ID!) { user(id: $id) { id metrics { pageViews } unreadNotificationCount notifications(first: 1) { totalCount } events(first: 1) { edges { node { id } } } } }`,
      { id },
    );
    expectRefusedCleanly(direct);
    for (const name of ['identity', 'analytics', 'notifications'] as const) {
      const stats = await stack.stats(name);
      for (const [route, r] of Object.entries(stats.routes)) {
        expect(KNOWN_ROUTES).toContain(route);
        for (const target of r.recent) {
          const path = target.split('?')[0]!;
          // Every character of an id that could climb or split a path is encoded: no ".." segment, no extra "/".
          expect(path.split('/').filter((segment) => segment === '..' || segment === '.')).toEqual([]);
          expect(path.split('/').length).toBeLessThanOrEqual(5);
        }
      }
    }
    const search = (await stack.stats('identity')).routes['GET /api/v2/users']?.recent ?? [];
    for (const target of search) {
      const q = new URL(`http://x${target}`).searchParams.get('q');
      if (q === null) continue;
      // One phrase per id, quotes escaped inside it: the query is exactly user_id:("…").
      expect(q).toMatch(/^user_id:\("(?:[^"\\]|\\.)*"(?: OR "(?:[^"\\]|\\.)*")*\)$/);
    }
  });
});

describe('fuzz: random documents built from the schema', () => {
  const schema = buildSchema();
  let seed = 7;
  const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const nasty = ['', ' ', '"', '\\', '../', '") OR *', '\u0000', 'é', 'x'.repeat(300), '{}', '1e309', '-1', '$', '@', '#'];

  function value(type: GraphQLInputType, depth: number): string {
    if (isNonNullType(type)) return value(type.ofType, depth);
    if (isListType(type)) return `[${Array.from({ length: Math.floor(random() * 3) }, () => value(type.ofType, depth + 1)).join(', ')}]`;
    const named = getNamedType(type);
    if (random() < 0.1) return pick(['null', '""', '-1', '1.5', 'true', 'FOO', '[]', '{}']);
    if (isEnumType(named)) return random() < 0.8 ? pick(named.getValues()).name : 'NOT_A_VALUE';
    if (isInputObjectType(named)) {
      if (depth > 2) return '{}';
      return `{ ${Object.values(named.getFields())
        .filter(() => random() < 0.8)
        .map((f) => `${f.name}: ${value(f.type, depth + 1)}`)
        .join(', ')} }`;
    }
    if (isScalarType(named)) {
      switch (named.name) {
        case 'Int':
          return String(pick([0, 1, 5, 20, 100, 101, -5, 2 ** 31, 999_999]));
        case 'Boolean':
          return pick(['true', 'false']);
        case 'Float':
          return String(pick([0, 1.5, -1, 1e300]));
        default:
          return JSON.stringify(random() < 0.5 ? pick(nasty) : pick([stack.userId(2), stack.userId(3), '2024-01-01T00:00:00Z', 'not-a-date']));
      }
    }
    return 'null';
  }

  function selection(type: GraphQLObjectType, depth: number): string {
    const fields = Object.values(type.getFields()) as GraphQLField<unknown, unknown>[];
    const chosen = fields.filter(() => random() < 0.4);
    if (chosen.length === 0) chosen.push(pick(fields));
    return chosen
      .map((f) => {
        const args = f.args.filter((a) => isNonNullType(a.type) || random() < 0.5).map((a) => `${a.name}: ${value(a.type, 0)}`);
        const named = getNamedType(f.type);
        const sub = isObjectType(named) ? (depth > 3 ? `{ __typename }` : `{ ${selection(named, depth + 1)} }`) : '';
        return `${random() < 0.1 ? `al${Math.floor(random() * 9)}: ` : ''}${f.name}${args.length ? `(${args.join(', ')})` : ''} ${sub}`;
      })
      .join(' ');
  }

  it('200 random queries and mutations: never a 5xx, every error coded, nothing internal', async () => {
    const seen = new Map<number, number>();
    for (let i = 0; i < 200; i++) {
      const root = random() < 0.8 ? schema.getQueryType()! : schema.getMutationType()!;
      const document = `${root === schema.getQueryType() ? 'query' : 'mutation'} { ${selection(root, 0)} }`;
      const res = await gql(document);
      seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
      if (res.status >= 500 || INTERNALS.test(res.text)) throw new Error(`document ${i} got ${res.status}:\n${document}\n${res.text.slice(0, 500)}`);
      expectRefusedCleanly(res);
    }
    // The fuzz exercised both accepted and refused documents.
    expect(seen.get(200) ?? 0).toBeGreaterThan(10);
    expect(seen.get(400) ?? 0).toBeGreaterThan(10);
  });
});
