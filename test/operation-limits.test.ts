import { beforeAll, describe, expect, it } from 'vitest';
import { stackPool, type Stack } from './helpers/stack.js';

/** What a client may send: graphql-armor's limits, introspection and field suggestions, the request formats a server without uploads takes. */
type AnyData = Record<string, any>;

const stackWith = stackPool();
const VENDORS = ['identity', 'analytics', 'notifications'] as const;

async function vendorCalls(stack: Stack): Promise<number> {
  const stats = await Promise.all(VENDORS.map((name) => stack.stats(name)));
  return stats.reduce((sum, s) => sum + s.totalCalls, 0);
}

describe('limits on what clients send', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await stackWith({ ops: (o) => ({ ...o, limits: { ...o.limits, maxDepth: 4, maxCost: 15, maxAliases: 2, maxTokens: 60, maxDirectives: 2 } }) });
  });

  it('a document over any limit is a 400 naming the limit, and no vendor is called; one within them all runs', async () => {
    const id = stack.userId(1);
    const over: Array<[string, string, RegExp]> = [
      [`{ userList(first: 2) { edges { node { metrics { pageViews } } } } }`, 'GRAPHQL_VALIDATION_FAILED', /depth limit of 4 exceeded, found 5/],
      [
        `{ a: user(id: "${id}") { name metrics { pageViews } } b: user(id: "${id}") { name metrics { pageViews } } }`,
        'GRAPHQL_VALIDATION_FAILED',
        /Cost limit of 15 exceeded, found 17.5/,
      ],
      [`{ a: user(id: "${id}") { name } b: user(id: "${id}") { name } c: user(id: "${id}") { name } }`, 'GRAPHQL_VALIDATION_FAILED', /Aliases limit of 2 exceeded, found 3/],
      [`{ user(id: "${id}") { name @skip(if: false) @include(if: true) @skip(if: false) } }`, 'GRAPHQL_VALIDATION_FAILED', /Directives limit of 2 exceeded, found 3/],
      [`{ user(id: "${id}") { ${'name '.repeat(60)}} }`, 'GRAPHQL_PARSE_FAILED', /Token limit of 60 exceeded/],
    ];
    for (const [query, code, message] of over) {
      const res = await stack.gql<AnyData>(query);
      expect(res.status, query).toBe(400);
      expect(
        res.body.errors!.map((e) => e.extensions!.code).every((c) => c === code),
        query,
      ).toBe(true);
      expect(res.body.errors!.map((e) => e.message).join('\n'), query).toMatch(message);
      expect(res.body.data, query).toBeUndefined();
    }
    expect(await vendorCalls(stack)).toBe(0);
    // A document refused once is refused again (the validation cache keeps the limits' verdict).
    expect((await stack.gql<AnyData>(over[0]![0])).status).toBe(400);

    const within = await stack.gql<AnyData>(`{ a: user(id: "${id}") { name @include(if: true) metrics { pageViews } } }`);
    expect(within.status).toBe(200);
    expect(within.body.errors).toBeUndefined();
    expect(within.body.data!.a.name).toEqual(expect.any(String));
    expect(await vendorCalls(stack)).toBeGreaterThan(0);
  });
});

describe('schema exposure', () => {
  it('introspection off: __schema is refused and a misspelled field gets no suggestion (it would leak the schema)', async () => {
    const closed = await stackWith({ ops: (o) => ({ ...o, introspection: false }) });
    const intro = await closed.gql<AnyData>('{ __schema { queryType { name } } }');
    expect(intro.status).toBe(400);
    expect(intro.body.errors![0]!.extensions!.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(intro.body.errors![0]!.message).toMatch(/introspection has been disabled/);
    const typo = await closed.gql<AnyData>(`{ user(id: "${closed.userId(1)}") { nmae } }`);
    expect(typo.status).toBe(400);
    expect(typo.body.errors![0]!.message).toMatch(/Cannot query field "nmae" on type "User"/);
    expect(typo.body.errors![0]!.message).not.toMatch(/Did you mean|"name"/);
  });

  it('introspection on (development): both answer, the suggestion names the field', async () => {
    const open = await stackWith({ ops: (o) => ({ ...o, introspection: true }) });
    const intro = await open.gql<AnyData>('{ __schema { queryType { name } } }');
    expect(intro.status).toBe(200);
    expect(intro.body.data!.__schema.queryType.name).toBe('Query');
    const typo = await open.gql<AnyData>(`{ user(id: "${open.userId(1)}") { nmae } }`);
    expect(typo.body.errors![0]!.message).toMatch(/Did you mean "name"\?/);
  });
});

describe('request formats', () => {
  it('multipart/form-data (file uploads, which no field takes) is a 415, not parsed', async () => {
    const stack = await stackWith();
    const form = new FormData();
    form.set('operations', JSON.stringify({ query: `{ user(id: "${stack.userId(1)}") { name } }` }));
    form.set('map', '{}');
    const res = await fetch(stack.url, { method: 'POST', body: form, headers: { authorization: `Bearer ${await stack.token()}` } });
    expect(res.status).toBe(415);
    expect(await vendorCalls(stack)).toBe(0);
  });
});
