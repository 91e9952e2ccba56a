import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { calls, sharedStack } from './helpers/stack.js';

const stack = sharedStack();

type AnyData = Record<string, any>;

const PRIVATE_FIELDS = [
  'email',
  'emailVerified',
  'createdAt',
  'lastLoginAt',
  'metrics { pageViews }',
  'events(first: 1) { totalCount }',
  'notifications(first: 1) { totalCount }',
  'unreadNotificationCount',
];
const ALL = `id name nickname avatarUrl ${PRIVATE_FIELDS.join(' ')}`;

const sign = (claims: Record<string, unknown>, secret: string, build: (j: SignJWT) => SignJWT = (j) => j) =>
  build(new SignJWT(claims).setProtectedHeader({ alg: 'HS256' })).sign(new TextEncoder().encode(secret));

describe('who may ask', () => {
  it('no token: 401 UNAUTHENTICATED, and no upstream is called', async () => {
    const res = await stack.gql(`{ viewer { id } }`, {}, { token: null });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    expect(res.body.errors![0]!.extensions!.code).toBe('UNAUTHENTICATED');
    expect((await stack.stats('identity')).totalCalls).toBe(0);
  });

  it('expired, forged, exp-less, sub-less and non-Bearer tokens are all UNAUTHENTICATED', async () => {
    const sub = stack.userId(0);
    const now = Math.floor(Date.now() / 1000);
    const tokens = {
      expired: await sign({ scope: 'admin' }, stack.secret, (j) => j.setSubject(sub).setExpirationTime(now - 60)),
      forged: await sign({ scope: 'admin' }, 'another-secret-of-at-least-32-characters!!', (j) => j.setSubject(sub).setExpirationTime('1h')),
      noExp: await sign({ scope: 'admin' }, stack.secret, (j) => j.setSubject(sub)),
      noSub: await sign({ scope: 'admin' }, stack.secret, (j) => j.setExpirationTime('1h')),
      garbage: 'not.a.jwt',
    };
    for (const [name, token] of Object.entries(tokens)) {
      const res = await stack.gql(`{ viewer { id } }`, {}, { token });
      expect(res.status, name).toBe(401);
      expect(res.body.errors![0]!.extensions!.code, name).toBe('UNAUTHENTICATED');
      expect(res.text, name).not.toMatch(/signature|JWS|JWT|claim/i);
    }
    const basic = await stack.gql(`{ viewer { id } }`, {}, { token: null, headers: { authorization: 'Basic dXNlcjpwYXNz' } });
    expect(basic.status).toBe(401);
  });

  it('a user reads all of their own fields', async () => {
    const me = stack.userId(10);
    const token = await stack.token({ sub: me, admin: false });
    const res = await stack.gql<AnyData>(`query($id: ID!) { user(id: $id) { ${ALL} } viewer { email } }`, { id: me }, { token });
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data!.user.email).toBe(stack.upstreams.dataset.users[10]!.email);
    expect(res.body.data!.user.metrics.pageViews).toBeTypeOf('number');
    expect(res.body.data!.viewer.email).toBe(stack.upstreams.dataset.users[10]!.email);
  });

  it("another user's private fields are null with FORBIDDEN, public ones answer, and no upstream is asked for them", async () => {
    const token = await stack.token({ sub: stack.userId(10), admin: false });
    const other = stack.userId(11);
    const res = await stack.gql<AnyData>(`query($id: ID!) { user(id: $id) { ${ALL} } }`, { id: other }, { token });
    expect(res.status).toBe(200);
    const raw = stack.upstreams.dataset.users[11]!;
    expect(res.body.data!.user).toEqual({
      id: other,
      name: raw.name,
      nickname: raw.nickname,
      avatarUrl: raw.picture,
      email: null,
      emailVerified: null,
      createdAt: null,
      lastLoginAt: null,
      metrics: null,
      events: null,
      notifications: null,
      unreadNotificationCount: null,
    });
    expect(res.body.errors).toHaveLength(PRIVATE_FIELDS.length);
    for (const e of res.body.errors!) expect(e.extensions!.code).toBe('FORBIDDEN');
    expect(res.text).not.toContain(raw.email);
    expect((await stack.stats('analytics')).totalCalls).toBe(0);
    expect((await stack.stats('notifications')).totalCalls).toBe(0);
  });

  it('in lists too: a non-admin gets public fields of everyone and private fields only of themselves', async () => {
    const me = stack.userId(1);
    const token = await stack.token({ sub: me, admin: false });
    const res = await stack.gql<AnyData>(`{ userList(first: 3) { edges { node { id name email } } } }`, {}, { token });
    const nodes = res.body.data!.userList.edges.map((e: AnyData) => e.node);
    expect(nodes.map((n: AnyData) => n.email)).toEqual([null, stack.upstreams.dataset.users[1]!.email, null]);
    expect(nodes.every((n: AnyData) => typeof n.name === 'string')).toBe(true);
    expect(res.body.errors!.map((e) => e.path)).toEqual([
      ['userList', 'edges', 0, 'node', 'email'],
      ['userList', 'edges', 2, 'node', 'email'],
    ]);
  });

  it('an admin (scope contains admin) reads everyone', async () => {
    const token = await stack.token({ sub: 'ops-bot', admin: true });
    const ids = [stack.userId(30), stack.userId(31)];
    const res = await stack.gql<AnyData>(`query($ids: [ID!]!) { users(ids: $ids) { email unreadNotificationCount } }`, { ids }, { token });
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data!.users.map((u: AnyData) => u.email)).toEqual([stack.upstreams.dataset.users[30]!.email, stack.upstreams.dataset.users[31]!.email]);
    expect(calls(await stack.stats('notifications'), 'GET /v1/unread-counts')).toBe(1);
  });

  it('a scope that merely contains the letters is not admin', async () => {
    const token = await sign({ scope: 'read:admins superadmin' }, stack.secret, (j) => j.setSubject(stack.userId(40)).setExpirationTime('1h'));
    const res = await stack.gql<AnyData>(`query($id: ID!) { user(id: $id) { email } }`, { id: stack.userId(41) }, { token });
    expect(res.body.errors![0]!.extensions!.code).toBe('FORBIDDEN');
  });
});

describe('verified tokens are remembered until they expire', () => {
  it('the same token verifies once; another token (a forgery is another string) in full; an expired one is not remembered', async () => {
    const { cachedVerifier } = await import('../src/auth/token-verifiers.js');
    const { SignJWT } = await import('jose');
    const secret = new TextEncoder().encode('x'.repeat(32));
    let verifications = 0;
    const verify = cachedVerifier(async (token) => {
      verifications++;
      if (token.endsWith('forged')) throw new Error('bad signature');
      return { userId: 'u1', admin: false };
    });
    const sign = (exp: number) => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('u1').setExpirationTime(exp).sign(secret);
    const now = Math.floor(Date.now() / 1000);
    const good = await sign(now + 600);
    await verify(good);
    await verify(good);
    expect(verifications).toBe(1);
    await expect(verify(`${good}forged`)).rejects.toThrow();
    await expect(verify(`${good}forged`)).rejects.toThrow();
    expect(verifications).toBe(3);
    const expired = await sign(now - 5);
    await verify(expired);
    await verify(expired);
    expect(verifications).toBe(5);
  });
});
