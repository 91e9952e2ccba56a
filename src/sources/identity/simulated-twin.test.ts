import { describe, expect, it } from 'vitest';
import { simulatedTwins } from '../../../test/helpers/twins.js';

/** This vendor's simulated twin against UPSTREAMS.md: what a source here may rely on, and what the simulator must do. */
const t = simulatedTwins();
const { identity, stats, faults } = t;

describe('identity (Auth0 Management API v2 dialect)', () => {
  it('OAuth2: wrong credentials are access_denied; calls need a valid, unexpired bearer', async () => {
    const bad = await fetch(`${t.up.identity.url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'client_credentials', client_id: 'x', client_secret: 'y', audience: t.up.credentials.identity.audience }),
    });
    expect(bad.status).toBe(401);
    expect(await bad.json()).toMatchObject({ error: 'access_denied' });
    const id = encodeURIComponent(t.up.dataset.users[0]!.user_id);
    expect((await fetch(`${t.up.identity.url}/api/v2/users/${id}`)).status).toBe(401);
    expect(await (await identity(`/api/v2/users/${id}`, { headers: { authorization: 'Bearer nope' } })).json()).toEqual({
      statusCode: 401,
      error: 'Unauthorized',
      message: 'Invalid token',
    });
    expect((await identity(`/api/v2/users/${id}`)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1100));
    expect((await identity(`/api/v2/users/${id}`)).status).toBe(401);
  });

  it('GET user, 404 with inexistent_user, URL-encoded ids', async () => {
    const u = t.up.dataset.users[5]!;
    const res = await identity(`/api/v2/users/${encodeURIComponent(u.user_id)}`);
    expect(await res.json()).toEqual(u);
    const missing = await identity(`/api/v2/users/${encodeURIComponent('auth0|nobody')}`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ statusCode: 404, errorCode: 'inexistent_user' });
  });

  it('Lucene batch search by ids returns the vendor order, omits unknown ids, records the batch size', async () => {
    const ids = [t.up.dataset.users[9]!.user_id, 'auth0|unknown', t.up.dataset.users[2]!.user_id];
    const q = `user_id:(${ids.map((i) => `"${i}"`).join(' OR ')})`;
    const res = await identity(`/api/v2/users?q=${encodeURIComponent(q)}&per_page=100&page=0&include_totals=true`);
    const body = (await res.json()) as { users: { user_id: string }[]; total: number; start: number; limit: number; length: number };
    expect(body.users.map((u) => u.user_id)).toEqual([ids[2], ids[0]]);
    expect(body).toMatchObject({ total: 2, start: 0, limit: 100, length: 2 });
    expect((await stats(t.up.identity)).routes['GET /api/v2/users']!.batchSizes).toEqual([3]);
    const tooMany = `user_id:(${Array.from({ length: 101 }, (_, i) => `"x${i}"`).join(' OR ')})`;
    expect((await identity(`/api/v2/users?q=${encodeURIComponent(tooMany)}`)).status).toBe(400);
    expect((await identity(`/api/v2/users?q=${encodeURIComponent('user_id:("a") OR *')}`)).status).toBe(400);
  });

  it('lists all users by created_at, 0-based pages, per_page at most 100, plain array without include_totals', async () => {
    const p1 = (await (await identity('/api/v2/users?page=1&per_page=10&include_totals=true')).json()) as { users: { user_id: string; created_at: string }[]; total: number };
    expect(p1.total).toBe(1200);
    expect(p1.users.map((u) => u.user_id)).toEqual(t.up.dataset.users.slice(10, 20).map((u) => u.user_id));
    expect([...p1.users].sort((a, b) => a.created_at.localeCompare(b.created_at))).toEqual(p1.users);
    expect(Array.isArray(await (await identity('/api/v2/users?per_page=2')).json())).toBe(true);
    expect((await identity('/api/v2/users?per_page=101')).status).toBe(400);
  });

  it('changes since an instant: users updated at or after it, inclusive, in creation order; an edit moves a user in or out', async () => {
    const users = t.up.dataset.users;
    const since = async (instant: string) => {
      const q = `updated_at:["${instant}" TO *]`;
      const res = await identity(`/api/v2/users?q=${encodeURIComponent(q)}&per_page=100&include_totals=true`);
      return ((await res.json()) as { users: { user_id: string }[] }).users.map((u) => u.user_id);
    };
    const pause = () => new Promise((r) => setTimeout(r, 5));
    await pause();
    const before = new Date().toISOString();
    await pause();
    expect(await since(before)).toEqual([]);
    const edited = users[5]!.user_id;
    await identity(`/api/v2/users/${encodeURIComponent(edited)}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ nickname: 'moved' }),
    });
    expect(await since(before)).toEqual([edited]);

    const tail = users.slice(1190).map((u) => u.user_id);
    const fromTail = await since(users[1190]!.created_at);
    expect(fromTail[0]).toBe(edited);
    expect(fromTail.slice(-10)).toEqual(tail);
    // A clock behind ours: an edit stamped in the past takes the user out of a later window.
    const backdated = users[1195]!.user_id;
    const admin = await fetch(`${t.up.identity.url}/__admin/users/${encodeURIComponent(backdated)}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ nickname: 'late', updated_at: '2000-01-01T00:00:00.000Z' }),
    });
    expect(admin.status).toBe(200);
    expect(await since(users[1190]!.created_at)).toEqual([edited, ...tail.filter((id) => id !== backdated)]);
  });

  it('searchLagMs: a change made under it reaches the search that much later, under its own updated_at; GET by id has it at once', async () => {
    const user = t.up.dataset.users[60]!;
    const id = encodeURIComponent(user.user_id);
    const searched = async (q: string) =>
      ((await (await identity(`/api/v2/users?q=${encodeURIComponent(q)}&per_page=100&include_totals=true`)).json()) as { users: { user_id: string; nickname: string }[] }).users;
    const before = new Date(Date.now() - 1).toISOString();
    await faults(t.up.identity, { searchLagMs: 400 });
    const patched = await identity(`/api/v2/users/${id}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ nickname: 'lagged' }) });
    const updatedAt = ((await patched.json()) as { updated_at: string }).updated_at;
    // Cleared: the change already made still lags (the index took it in late), a change made now would not.
    await faults(t.up.identity, {});
    expect(((await (await identity(`/api/v2/users/${id}`)).json()) as { nickname: string }).nickname).toBe('lagged');
    expect((await searched(`user_id:("${user.user_id}")`))[0]!.nickname).not.toBe('lagged');
    expect((await searched(`updated_at:["${before}" TO *]`)).map((u) => u.user_id)).not.toContain(user.user_id);
    await new Promise((r) => setTimeout(r, 450));
    expect((await searched(`user_id:("${user.user_id}")`))[0]!.nickname).toBe('lagged');
    expect((await searched(`updated_at:["${before}" TO *]`)).find((u) => u.user_id === user.user_id)).toMatchObject({ nickname: 'lagged', updated_at: updatedAt });
  });

  it('PATCH updates name, nickname, picture and refuses anything else', async () => {
    const id = encodeURIComponent(t.up.dataset.users[50]!.user_id);
    const ok = await identity(`/api/v2/users/${id}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ nickname: 'neo' }) });
    expect(await ok.json()).toMatchObject({ nickname: 'neo' });
    const bad = await identity(`/api/v2/users/${id}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'x@y.z' }) });
    expect(bad.status).toBe(400);
  });

  it('x-ratelimit-* on every response; over the limit 429 with them and no Retry-After', async () => {
    await faults(t.up.identity, { rateLimitPerSec: 2 });
    const responses = await Promise.all([1, 2, 3, 4].map(() => identity('/api/v2/users?per_page=1')));
    for (const r of responses) {
      expect(r.headers.get('x-ratelimit-limit')).toBe('2');
      expect(Number(r.headers.get('x-ratelimit-reset'))).toBeGreaterThanOrEqual(Math.floor(Date.now() / 1000));
    }
    const limited = responses.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThanOrEqual(1);
    expect(limited[0]!.headers.get('retry-after')).toBeNull();
    expect(limited[0]!.headers.get('x-ratelimit-remaining')).toBe('0');
  });
});
