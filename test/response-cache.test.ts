import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { getNamedType, isObjectType, type GraphQLObjectType } from 'graphql';
import { makeEntry } from '../src/cache/entry.js';
import { entryWeight, MemoryTier } from '../src/cache/memory-tier.js';
import { Doorkeeper } from '../src/cache/doorkeeper.js';
import { createHash } from 'node:crypto';
import { documentHash, ENTITY_ROOT_FIELDS } from '../src/cache/response-cache.js';
import { resolvers } from '../src/resolvers/index.js';
import { buildSchema } from '../src/schema.js';
import { calls, everyEntity, READ_ROUTES, stackPool, type Stack } from './helpers/stack.js';

/**
 * Whole responses of entity queries, kept while the L1 entries they were built
 * from are unchanged and fresh. Hits are read off /metrics, upstream calls off
 * the simulated upstreams' stats.
 */
type AnyData = Record<string, any>;

const DASHBOARD = `query Dashboard($id: ID!) {
  user(id: $id) { id name email metrics { pageViews } unreadNotificationCount notifications(first: 5) { totalCount edges { node { id title } } } }
}`;
const UPDATE = `mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { status user { name } } }`;

const stackWith = stackPool((options) => ({ ...options, cache: { enabled: true, ...options.cache } }));

async function responseLookups(stack: Stack): Promise<{ hit: number; miss: number }> {
  const text = await (await fetch(stack.url.replace('/graphql', '/metrics'))).text();
  const count = (result: string) => Number(text.match(new RegExp(`gateway_cache_lookups_total\\{entity="response",tier="l1",result="${result}"\\} (\\d+)`))?.[1] ?? 0);
  return { hit: count('hit'), miss: count('miss') };
}

describe('documentHash', () => {
  const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

  it('is the SHA-256 of the text, the same when asked again (kept) and for a document too large to keep', () => {
    const small = '{ viewer { id } }';
    const large = `query Large { viewer { id } } ${'# padding\n'.repeat(8000)}`;
    for (const text of [small, small, large, large]) expect(documentHash({ query: text })).toBe(sha256(text));
    // Many distinct documents: each still hashed right once the kept ones are evicted.
    for (let i = 0; i < 3000; i++) {
      const text = `query Q${i} { viewer { id } } # ${'x'.repeat(400)}`;
      expect(documentHash({ query: text })).toBe(sha256(text));
    }
    expect(documentHash({ query: small })).toBe(sha256(small));
  });

  it('is a persisted query’s hash when no text is sent', () => {
    expect(documentHash({ extensions: { persistedQuery: { version: 1, sha256Hash: 'sha256:ABC' } } })).toBe('abc');
  });
});

describe('response cache', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await stackWith({ writes: { deliveryBackoffMs: 100 } });
  });
  afterEach(() => stack.reset());

  it('a repeated entity query is answered whole, with the same body, once its entries are all in L1', async () => {
    const id = stack.userId(300);
    const first = await stack.gql<AnyData>(DASHBOARD, { id }); // misses: fetched, not kept
    const second = await stack.gql<AnyData>(DASHBOARD, { id }); // all L1 hits: executed and kept
    const before = await responseLookups(stack);
    const third = await stack.gql<AnyData>(DASHBOARD, { id });
    expect(first.body.errors).toBeUndefined();
    expect(third.text).toBe(second.text);
    expect(third.body.data).toEqual(first.body.data);
    const after = await responseLookups(stack);
    expect(after.hit - before.hit).toBe(1);
    expect(calls(await stack.stats('identity'), READ_ROUTES.search)).toBe(1);
  });

  it('a query first asked with its entries already in L1 is kept on its second request, not its first', async () => {
    const ids = [stack.userId(305), stack.userId(306)];
    const pair = `query($ids: [ID!]!) { users(ids: $ids) { id name } }`;
    const single = `query($id: ID!) { user(id: $id) { id name } }`;
    for (const id of ids) await stack.gql(single, { id }); // both users into L1
    const before = await responseLookups(stack);
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await stack.gql<AnyData>(pair, { ids }));
    const after = await responseLookups(stack);
    // 1st: all L1 hits, but a key never asked before is not kept; 2nd: kept; 3rd: answered from it.
    expect({ hit: after.hit - before.hit, miss: after.miss - before.miss }).toEqual({ hit: 1, miss: 2 });
    expect(answers[2]!.text).toBe(answers[1]!.text);
    expect(calls(await stack.stats('identity'), READ_ROUTES.search)).toBe(2);
  });

  it('a write to the user retires every response built from the profile: the next read shows it', async () => {
    const id = stack.userId(301);
    const token = await stack.token({ sub: id, admin: false });
    for (let i = 0; i < 3; i++) await stack.gql<AnyData>(DASHBOARD, { id }, { token });
    const hitsBefore = (await responseLookups(stack)).hit;
    const update = await stack.gql<AnyData>(UPDATE, { input: { userId: id, name: 'Ada Byron' } }, { token });
    expect(update.body.data!.updateProfile.status).toBe('COMPLETE');
    const after = await stack.gql<AnyData>(DASHBOARD, { id }, { token });
    expect(after.body.data!.user.name).toBe('Ada Byron');
    expect((await responseLookups(stack)).hit).toBe(hitsBefore);
  });

  it("one viewer's response is never another's: a non-owner still gets FORBIDDEN on private fields", async () => {
    const id = stack.userId(302);
    for (let i = 0; i < 3; i++) expect((await stack.gql<AnyData>(DASHBOARD, { id })).body.errors).toBeUndefined(); // admin, kept
    const stranger = await stack.token({ sub: stack.userId(303), admin: false });
    for (let i = 0; i < 2; i++) {
      const res = await stack.gql<AnyData>(DASHBOARD, { id }, { token: stranger });
      expect(res.body.data!.user.email).toBeNull();
      expect(res.body.errors?.map((e) => e.extensions?.code)).toContain('FORBIDDEN');
    }
  });

  it('queries that read anything but entities (a listing) are never kept: their reads come from the entity cache, not a kept response', async () => {
    const responseLookups = async () => {
      const text = await (await fetch(stack.url.replace('/graphql', '/metrics'))).text();
      return [...text.matchAll(/gateway_cache_lookups_total\{entity="response",tier="l1",result="(?:hit|miss)"\} (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
    };
    const before = await responseLookups();
    const list = `{ userList(first: 3) { edges { node { id name } } } }`;
    for (let i = 0; i < 3; i++) await stack.gql(list);
    expect(await responseLookups()).toBe(before);
    // The window itself is an entity (identity.userPage): one vendor call, then L1.
    expect(calls(await stack.stats('identity'), READ_ROUTES.search)).toBe(1);
  });

  it('past the TTL of an entry it was built from, a response is not given again', async () => {
    const short = await stackWith({ cache: { entities: everyEntity({ ttlMs: 300, staleWhileRevalidateMs: 0, staleIfErrorMs: 0 }) } });
    const id = short.userId(304);
    for (let i = 0; i < 3; i++) await short.gql<AnyData>(DASHBOARD, { id });
    expect(calls(await short.stats('identity'), READ_ROUTES.search)).toBe(1);
    await new Promise((r) => setTimeout(r, 400));
    const later = await short.gql<AnyData>(DASHBOARD, { id });
    expect(later.body.errors).toBeUndefined();
    expect(calls(await short.stats('identity'), READ_ROUTES.search)).toBe(2);
  });

  it('the fields under the entity root fields have no resolvers but the loader-backed ones it was built for', () => {
    // A resolver here that reads a source directly (not through ctx.loaders) would be answered from
    // the response cache without running: such a field needs its root taken out of ENTITY_ROOT_FIELDS.
    const schema = buildSchema();
    const seen = new Set<string>();
    const visit = (type: GraphQLObjectType) => {
      if (seen.has(type.name)) return;
      seen.add(type.name);
      for (const field of Object.values(type.getFields())) {
        const named = getNamedType(field.type);
        if (isObjectType(named)) visit(named);
      }
    };
    for (const name of ENTITY_ROOT_FIELDS) visit(getNamedType(schema.getQueryType()!.getFields()[name]!.type) as GraphQLObjectType);
    const withResolvers = Object.fromEntries([...seen].filter((t) => t in resolvers).map((t) => [t, Object.keys((resolvers as Record<string, object>)[t]!).sort()]));
    expect(withResolvers).toEqual({
      // Reads its parent only (the series of a metrics entity, made on read): nothing a cached response could miss.
      Metrics: ['series'],
      User: ['avatarUrl', 'createdAt', 'email', 'emailVerified', 'events', 'lastLoginAt', 'metrics', 'name', 'nickname', 'notifications', 'unreadNotificationCount'],
    });
  });
});

describe('the response cache doorkeeper', () => {
  it('says a key was seen from its second sighting on, and forgets it two generations later', () => {
    const doorkeeper = new Doorkeeper(4);
    expect([doorkeeper.seen('a'), doorkeeper.seen('a')]).toEqual([false, true]);
    for (const k of ['b', 'c', 'd', 'e']) doorkeeper.seen(k); // 'e' starts a second generation
    expect(doorkeeper.seen('a')).toBe(true); // still in the previous one
    for (const k of ['f', 'g', 'h', 'i', 'j', 'k', 'l', 'm']) doorkeeper.seen(k);
    expect(doorkeeper.seen('b')).toBe(false);
  });
});

describe('L1 entries a response stands on', () => {
  const entry = () => makeEntry({ n: 1 }, { ttlMs: 60_000, staleWhileRevalidateMs: 0, staleIfErrorMs: 0 }, 1000);

  it('are retired when replaced, dropped with their group, cleared or evicted', () => {
    // Every key has one character, so entries weigh the same for the same JSON.
    const weight = (jsonBytes: number) => entryWeight('a', jsonBytes);
    const l1 = new MemoryTier(weight(100) + weight(900));
    const [a, b, c, d] = [entry(), entry(), entry(), entry()];
    l1.set('a', 'g1', a, 100);
    l1.set('a', 'g1', b, 100); // replaces a
    l1.set('c', 'g2', c, 100);
    expect([l1.holds(a), l1.holds(b), l1.holds(c)]).toEqual([false, true, true]);
    l1.deleteGroup('g2');
    expect(l1.holds(c)).toBe(false);
    l1.set('d', 'g3', d, 950); // refused: the tier is full and 'd' was never offered before
    expect(l1.get('d')).toBeUndefined();
    expect(l1.holds(b)).toBe(true);
    l1.set('d', 'g3', d, 950); // its second offer evicts b (b and d together would be past the bound)
    expect([l1.holds(b), l1.holds(d)]).toEqual([false, true]);
    l1.clear();
    expect(l1.holds(d)).toBe(false);
  });
});
