import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'undici';
import { describe, expect, it } from 'vitest';
import { startSimulatedUpstreams } from '../simulator/index.js';
import { simulatedTwins } from './helpers/twins.js';

/** The simulator's machinery every vendor twin shares: faults and stats through the admin endpoint. */
const t = simulatedTwins();
const { analytics, notifications, audit, stats, faults } = t;

describe('faults and stats through the admin endpoint', () => {
  it('adds latency with jitter', async () => {
    await faults(t.up.analytics, { latencyMs: 150, jitterMs: 20 });
    const started = performance.now();
    await analytics('/v1/users/x/events');
    expect(performance.now() - started).toBeGreaterThanOrEqual(125);
  });

  it('fails a share of requests with the given status, only on the given routes', async () => {
    await faults(t.up.notifications, { errorRate: 1, errorStatus: 502, routes: ['GET /v1/unread-counts'] });
    expect((await notifications('/v1/unread-counts?user_ids=a')).status).toBe(502);
    expect((await notifications('/v1/users/a/notifications')).status).toBe(200);
  });

  it('malformed bodies: truncated JSON or the wrong shape', async () => {
    await faults(t.up.notifications, { malformedRate: 1, malformedKind: 'syntax' });
    const text = await (await notifications('/v1/unread-counts?user_ids=a')).text();
    expect(() => JSON.parse(text)).toThrow();
    await faults(t.up.notifications, { malformedRate: 1, malformedKind: 'shape' });
    expect(await (await notifications('/v1/unread-counts?user_ids=a')).json()).toEqual({ malformed: true });
  });

  it('headers: replaced or dropped on the answers of the routes named, after the API set its own', async () => {
    await faults(t.up.notifications, { headers: { link: 'garbage', 'x-total-count': null }, routes: ['GET /v1/users/:id/notifications'] });
    const res = await notifications('/v1/users/a/notifications');
    expect(res.headers.get('link')).toBe('garbage');
    expect(res.headers.has('x-total-count')).toBe(false);
    expect(res.headers.get('content-type')).toContain('application/json');
    expect((await faults(t.up.notifications, { headers: { 'Bad Name': 'x' } })).status).toBe(400);
  });

  it('down: reset drops connections, hang never answers, refuse stops listening for downForMs', async () => {
    await faults(t.up.audit, { down: 'reset' });
    await expect(audit('/v1/events')).rejects.toThrow();
    await faults(t.up.audit, { down: 'hang' });
    await expect(audit('/v1/events', { signal: AbortSignal.timeout(300) })).rejects.toThrow();
    await faults(t.up.audit, { down: 'refuse', downForMs: 400 });
    const refused = await audit('/v1/events').catch((e: Error & { cause?: { code?: string } }) => e.cause?.code);
    expect(refused).toBe('ECONNREFUSED');
    await new Promise((r) => setTimeout(r, 600));
    expect((await audit('/v1/events')).status).toBe(200);
  });

  it('idleCloseMs: no Keep-Alive header says it; a request on a connection idle that long is reset unanswered, a sooner one answered', async () => {
    const client = new Client(t.up.analytics.url, { keepAliveTimeout: 60_000, keepAliveMaxTimeout: 60_000 });
    const get = async () => {
      const res = await client.request({
        path: `/v1/users/${encodeURIComponent(t.up.dataset.users[0]!.user_id)}/events`,
        method: 'GET',
        headers: { 'x-api-key': t.up.credentials.analyticsApiKey },
      });
      await res.body.text();
      return res;
    };
    try {
      expect((await get()).headers['keep-alive']).toBe('timeout=65');
      await faults(t.up.analytics, { idleCloseMs: 200 });
      const before = (await stats(t.up.analytics)).totalCalls;
      const answered = await get();
      expect(answered.statusCode).toBe(200);
      expect(answered.headers['keep-alive']).toBeUndefined();
      expect((await get()).statusCode).toBe(200);
      await sleep(250);
      await expect(get()).rejects.toMatchObject({ code: expect.stringMatching(/^(ECONNRESET|UND_ERR_SOCKET)$/) });
      const after = await stats(t.up.analytics);
      expect([after.totalCalls - before, after.idleClosed]).toEqual([2, 1]);
      // The next request opens a connection of its own and is answered.
      expect((await get()).statusCode).toBe(200);
    } finally {
      await client.close();
    }
  });

  it("down: stall sends a success's status and headers and half its body, then nothing until the fault is cleared", async () => {
    await faults(t.up.notifications, { down: 'stall' });
    const res = await notifications('/v1/unread-counts?user_ids=a,b,c');
    expect(res.status).toBe(200);
    const declared = Number(res.headers.get('content-length'));
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(first.value!.length).toBeGreaterThan(0);
    expect(first.value!.length).toBeLessThan(declared);
    const stalled = Symbol('stalled');
    expect(await Promise.race([reader.read(), new Promise((r) => setTimeout(() => r(stalled), 300))])).toBe(stalled);
    await faults(t.up.notifications, {}); // drops the stalled connection
    await expect(reader.read()).rejects.toThrow();
  });

  it("jumbleLists: a bulk answer's rows, and each row's series, reversed, the first repeated at the end; maps and scalars untouched", async () => {
    const ids = [t.up.dataset.users[1]!.user_id, t.up.dataset.users[2]!.user_id, 'nobody'];
    const query = () => analytics('/v1/metrics/query', { method: 'POST', body: JSON.stringify({ user_ids: ids, from: 1_700_000_000, to: 1_700_259_200, granularity: 'day' }) });
    const plain = (await (await query()).json()) as { data: { user_id: string; page_views: number; series: { ts: number }[] }[]; missing: string[] };
    await faults(t.up.analytics, { jumbleLists: true });
    const jumbled = (await (await query()).json()) as typeof plain;
    expect(plain.data.map((r) => r.user_id)).toEqual([ids[0], ids[1]]);
    expect(jumbled.data.map((r) => r.user_id)).toEqual([ids[1], ids[0], ids[0]]);
    const instants = plain.data[0]!.series.map((p) => p.ts);
    expect(instants.length).toBeGreaterThan(1);
    expect(jumbled.data[1]!.series.map((p) => p.ts)).toEqual([...instants].reverse().concat(instants[0]!));
    expect(jumbled.data[2]).toEqual(jumbled.data[1]);
    expect(jumbled.data[1]!.page_views).toBe(plain.data[0]!.page_views);
    expect(jumbled.missing).toEqual(plain.missing);
  });

  it('a bad profile is refused with 400', async () => {
    expect((await faults(t.up.audit, { errorRate: 2 })).status).toBe(400);
    expect((await faults(t.up.audit, { nonsense: true })).status).toBe(400);
  });

  it('stats count calls per route, statuses, and requests per second', async () => {
    await analytics('/v1/users/x/events');
    await analytics('/v1/nothing-here');
    const s = await stats(t.up.analytics);
    expect(s.routes['GET /v1/users/:id/events']).toMatchObject({ calls: 1, statuses: { '404': 1 } });
    expect(s.routes['unmatched']!.calls).toBe(1);
    expect(s.totalCalls).toBe(2);
    expect(Object.values(s.perSecond).reduce((a, b) => a + b, 0)).toBe(2);
    expect(s.maxPerSecond).toBeGreaterThanOrEqual(1);
  });

  it("stats give the vendor's own service time, injected latency included; a reset empties them", async () => {
    expect((await stats(t.up.analytics)).serviceMs).toEqual({ count: 0, p50: null, p99: null });
    await faults(t.up.analytics, { latencyMs: 60 });
    for (let i = 0; i < 5; i++) await analytics('/v1/users/x/events');
    const { serviceMs } = await stats(t.up.analytics);
    expect(serviceMs.count).toBe(5);
    expect(serviceMs.p50).toBeGreaterThanOrEqual(59);
    expect(serviceMs.p99).toBeGreaterThanOrEqual(serviceMs.p50!);
    expect(serviceMs.p99).toBeLessThan(1000);
    await fetch(`${t.up.analytics.url}/__admin/stats`, { method: 'DELETE' });
    expect((await stats(t.up.analytics)).serviceMs.count).toBe(0);
  });

  it('the dataset is seeded: 1,200 users, the same on every start', async () => {
    const again = await startSimulatedUpstreams();
    try {
      expect(again.dataset.users).toHaveLength(1200);
      expect(again.dataset.users.map((u) => u.user_id)).toEqual(t.up.dataset.users.map((u) => u.user_id));
      expect(again.dataset.notificationsOf(7).map((n) => n.id)).toEqual(t.up.dataset.notificationsOf(7).map((n) => n.id));
    } finally {
      await again.close();
    }
  });
});
