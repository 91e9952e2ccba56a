import { describe, expect, it } from 'vitest';
import { simulatedTwins } from '../../../test/helpers/twins.js';

/** This vendor's simulated twin against UPSTREAMS.md: what a source here may rely on, and what the simulator must do. */
const t = simulatedTwins();
const { notifications, faults } = t;

describe('notifications', () => {
  it('pages 1-based with an RFC 8288 Link header of absolute URLs and X-Total-Count; HTTP-dates', async () => {
    const user = t.up.dataset.users[0]!;
    const all = t.up.dataset.notificationsOf(0);
    const res = await notifications(`/v1/users/${encodeURIComponent(user.user_id)}/notifications?page=2&per_page=5`);
    const items = (await res.json()) as { id: string; created: string }[];
    expect(items.map((n) => n.id)).toEqual(all.slice(5, 10).map((n) => n.id));
    expect(items[0]!.created).toMatch(/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
    expect(res.headers.get('x-total-count')).toBe(String(all.length));
    const link = res.headers.get('link')!;
    for (const rel of ['next', 'prev', 'first', 'last']) expect(link).toMatch(new RegExp(`<http://[^>]+page=\\d+[^>]*>; rel="${rel}"`));
    const last = Math.ceil(all.length / 5);
    const lastRes = await notifications(`/v1/users/${encodeURIComponent(user.user_id)}/notifications?page=${last}&per_page=5`);
    expect(lastRes.headers.get('link')).not.toContain('rel="next"');
  });

  it('unread counts in bulk, unknown ids count 0', async () => {
    const a = t.up.dataset.users[3]!.user_id;
    const res = await notifications(`/v1/unread-counts?user_ids=${encodeURIComponent(a)},${encodeURIComponent('auth0|x')}`);
    expect(await res.json()).toEqual({ counts: { [a]: t.up.dataset.notificationsOf(3).filter((n) => !n.read).length, 'auth0|x': 0 } });
  });

  it('POST with Idempotency-Key: the same key replays byte for byte and creates one; another body is 422', async () => {
    const user = t.up.dataset.users[60]!.user_id;
    const before = t.up.dataset.notificationsOf(60).length;
    const send = (body: unknown) => notifications('/v1/notifications', { method: 'POST', headers: { 'idempotency-key': 'k-1' }, body: JSON.stringify(body) });
    const body = { user, title: 'Hi', body: 'There', channel: 'push' };
    const first = await send(body);
    expect(first.status).toBe(201);
    const second = await send(body);
    expect(second.status).toBe(201);
    expect(await second.text()).toBe(await first.text());
    expect(t.up.dataset.notificationsOf(60).length).toBe(before + 1);
    expect((await send({ ...body, title: 'Other' })).status).toBe(422);
  });

  it('writeHoldMs: the same key while its first request is being processed is 409 idempotency_key_in_use; after it, the first answer', async () => {
    const user = t.up.dataset.users[61]!.user_id;
    const before = t.up.dataset.notificationsOf(61).length;
    const send = () =>
      notifications('/v1/notifications', { method: 'POST', headers: { 'idempotency-key': 'k-held' }, body: JSON.stringify({ user, title: 'Held', body: 'b', channel: 'push' }) });
    await faults(t.up.notifications, { writeHoldMs: 300 });
    const first = send();
    await new Promise((r) => setTimeout(r, 100));
    const meanwhile = await send();
    expect(meanwhile.status).toBe(409);
    expect(await meanwhile.json()).toMatchObject({ error: 'idempotency_key_in_use' });
    expect((await first).status).toBe(201);
    await faults(t.up.notifications, {});
    expect((await send()).status).toBe(201);
    expect(t.up.dataset.notificationsOf(61).length).toBe(before + 1);
  });

  it('marks read and answers 429 with Retry-After as an HTTP-date', async () => {
    const user = t.up.dataset.users[61]!;
    const unread = t.up.dataset
      .notificationsOf(61)
      .filter((n) => !n.read)
      .slice(0, 2)
      .map((n) => n.id);
    const res = await notifications(`/v1/users/${encodeURIComponent(user.user_id)}/notifications/read`, { method: 'POST', body: JSON.stringify({ ids: unread }) });
    expect(await res.json()).toEqual({ updated: unread.length });
    await faults(t.up.notifications, { rateLimitPerSec: 1 });
    // Three calls within a second fall in at most two one-second windows: one window holds two, and refuses one.
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await notifications('/v1/unread-counts?user_ids=a'));
    const limited = answers.find((r) => r.status === 429)!;
    expect(limited.status).toBe(429);
    expect(Date.parse(limited.headers.get('retry-after')!)).toBeGreaterThan(Date.now() - 1000);
  });
});
