import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { Redis } from 'ioredis';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codeOf, collect, eventually, take, wsClient } from './helpers/live-client.js';
import { ScriptedUpstream } from './helpers/scripted-upstream.js';
import { describeWithRedis, TestRedis } from './helpers/redis.js';
import { stackPool, type Stack } from './helpers/stack.js';

/**
 * Vendors' events in (UPSTREAMS.md, Standard Webhooks). Events are signed here
 * by an independent implementation, the `standardwebhooks` package, so one bug
 * on both sides of the server's verifier and the simulator's signer cannot pass.
 */
type AnyData = Record<string, any>;
const SECRET = `whsec_${randomBytes(24).toString('base64')}`;
const signer = new Webhook(SECRET);
const stackWith = stackPool((o) => ({ webhookSecrets: { notifications: SECRET }, cache: { enabled: true }, ...o }));

function post(stack: Stack, payload: unknown, opts: { id?: string; at?: Date; signature?: string; source?: string; byteOrderMark?: boolean } = {}) {
  // A string is sent as it is: JSON.stringify cannot write every body a vendor may.
  const body = `${opts.byteOrderMark ? '\uFEFF' : ''}${typeof payload === 'string' ? payload : JSON.stringify(payload)}`;
  const id = opts.id ?? `msg_${randomUUID()}`;
  const at = opts.at ?? new Date();
  return fetch(stack.url.replace('/graphql', `/webhooks/${opts.source ?? 'notifications'}`), {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'webhook-id': id,
      'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
      'webhook-signature': opts.signature ?? signer.sign(id, at, body),
    },
    body,
  });
}

/** A notification made at the vendor itself, behind the server's back (the vendor sends its event when configured to). */
function makeAtVendor(stack: Stack, user: string, fields: { title: string; body: string; channel: string }): Promise<Response> {
  return fetch(`${stack.upstreams.notifications.url}/v1/notifications`, {
    method: 'POST',
    headers: { authorization: `Bearer ${stack.upstreams.credentials.notificationsToken}`, 'content-type': 'application/json', 'idempotency-key': randomUUID() },
    body: JSON.stringify({ user, ...fields }),
  });
}

const created = (user: string) => ({
  type: 'notification.created',
  timestamp: new Date().toISOString(),
  data: { id: randomUUID(), user, title: 't', body: 'b', channel: 'push', read: false, created: new Date().toUTCString() },
});
const UNREAD = `query($id: ID!) { user(id: $id) { unreadNotificationCount notifications(first: 1) { totalCount } } }`;

async function webhookCounts(stack: Stack): Promise<Record<string, number>> {
  const text = await (await fetch(stack.url.replace('/graphql', '/metrics'))).text();
  return Object.fromEntries([...text.matchAll(/gateway_webhooks_total\{source="[^"]+",outcome="([^"]+)"\} (\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
}

/**
 * A phone on a bad network: its subscription is sent, then nothing is read, while 400 events of 60 KB come (so the
 * sockets' buffers fill). graphql-yoga's pub/sub queue threw past 1,024 unread: in process, other subscribers missed
 * events; through Redis, the throw was in the message handler and the process exited.
 */
async function stalledSubscriber(stack: Stack): Promise<void> {
  const user = stack.userId(47);
  const token = await stack.token({ sub: user, admin: false });
  const stalled = connect(Number(new URL(stack.url).port), '127.0.0.1');
  const body = JSON.stringify({ query: `subscription($u: ID!) { notificationAdded(userId: $u) { id body } }`, variables: { u: user } });
  stalled.write(
    `POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  stalled.pause();
  // Another caller (an admin), as this one may hold one subscription only.
  const client = wsClient(stack, await stack.token());
  try {
    const reading = collect(client, `subscription($u: ID!) { notificationAdded(userId: $u) { id } }`, { u: user });
    await new Promise((r) => setTimeout(r, 300));
    const events = Array.from({ length: 400 }, () => {
      const event = created(user);
      event.data.body = 'b'.repeat(60_000);
      return event;
    });
    for (const event of events) expect((await post(stack, event)).status).toBe(202);
    expect(await eventually(() => reading.events.length === 400, 10_000)).toBe(true);
    reading.stop();
    // What the stalled subscriber gets once it reads: what was sent before it fell behind, then the error, then the end.
    let text = '';
    stalled.on('data', (d: Buffer) => (text += d.toString()));
    stalled.resume();
    expect(await eventually(() => text.includes('event: complete'), 10_000)).toBe(true);
    const heard = [...text.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]!) as AnyData);
    const last = heard.at(-1)!;
    expect(last.errors[0].extensions).toEqual({ code: 'OVERLOADED', reason: 'subscriber_behind' });
    expect(heard.length).toBeLessThan(400);
    expect(stack.logs.filter((l) => l.includes('left 20 events unread')).length).toBe(1);
    // Ended by itself, it freed the caller's place (SUBSCRIPTIONS_PER_CALLER is 1 here): a new subscription is taken.
    const again = wsClient(stack, token);
    try {
      const refused = take(again, `subscription($u: ID!) { notificationAdded(userId: $u) { id } }`, { u: user }, 1, 500);
      expect(codeOf(await refused.results)).toBeUndefined();
      refused.stop();
    } finally {
      await again.dispose();
    }
    expect((await stack.gql<AnyData>(UNREAD, { id: user })).status).toBe(200);
  } finally {
    stalled.destroy();
    await client.dispose();
  }
}

describe('POST /webhooks/<source>', () => {
  it('a valid event: 202 accepted; the same id again: 202 and no second effect; bad signatures 401, stale or malformed requests 400, with no detail', async () => {
    const stack = await stackWith();
    const id = `msg_${randomUUID()}`;
    const event = created(stack.userId(40));
    const first = await post(stack, event, { id });
    expect(first.status).toBe(202);
    expect(await first.json()).toEqual({ accepted: true });
    const again = await post(stack, event, { id });
    expect(again.status).toBe(202);
    expect(await again.json()).toEqual({ duplicate: true });

    const forged = await post(stack, event, { signature: `v1,${randomBytes(32).toString('base64')}` });
    expect(forged.status).toBe(401);
    expect(await forged.json()).toEqual({ error: 'unauthorized' });
    // Signed with another secret: as forged.
    const other = new Webhook(`whsec_${randomBytes(24).toString('base64')}`);
    const otherId = `msg_${randomUUID()}`;
    const at = new Date();
    expect((await post(stack, event, { id: otherId, at, signature: other.sign(otherId, at, JSON.stringify(event)) })).status).toBe(401);
    // Several signatures during a rotation: one valid is enough.
    const rotatingId = `msg_${randomUUID()}`;
    const rotating = `${other.sign(rotatingId, at, JSON.stringify(event))} ${signer.sign(rotatingId, at, JSON.stringify(event))}`;
    expect((await post(stack, event, { id: rotatingId, at, signature: rotating })).status).toBe(202);

    const old = await post(stack, event, { at: new Date(Date.now() - 10 * 60_000) });
    expect(old.status).toBe(400);
    expect(await old.json()).toEqual({ error: 'bad request' });
    expect((await post(stack, event, { at: new Date(Date.now() + 10 * 60_000) })).status).toBe(400);
    const unsigned = await fetch(stack.url.replace('/graphql', '/webhooks/notifications'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(unsigned.status).toBe(400);
    expect((await post(stack, event, { source: 'analytics' })).status).toBe(404);
    expect(await webhookCounts(stack)).toMatchObject({ accepted: 2, duplicate: 1, bad_signature: 2, bad_request: 3, unknown_source: 1 });
    // Nothing of why reached a response, only the log.
    expect(stack.logs.some((l) => l.includes('no signature matches'))).toBe(true);
    expect(stack.logs.some((l) => /webhook-timestamp 60\d s behind our clock \(tolerance ±300 s\)/.test(l))).toBe(true);

    // A vendor signing with a secret we do not have: every event refused, and the log says so without one line each.
    const refusedBefore = stack.logs.filter((l) => l.includes('"msg":"Webhook refused"')).length;
    for (let i = 0; i < 30; i++) expect((await post(stack, event, { signature: `v1,${randomBytes(32).toString('base64')}` })).status).toBe(401);
    // At most five in full per 10 s, and the earlier refusals of this test took some of them (two intervals at most here).
    expect(stack.logs.filter((l) => l.includes('"msg":"Webhook refused"')).length - refusedBefore).toBeLessThanOrEqual(10);
    expect(await webhookCounts(stack)).toMatchObject({ bad_signature: 32 });
  });

  it("an event invalidates that user's unread count and pages: fresh at once instead of after the TTL, and repeats or reordering change nothing", async () => {
    const stack = await stackWith();
    const user = stack.userId(41);
    const before = (await stack.gql<AnyData>(UNREAD, { id: user })).body.data!.user;
    // A notification made behind the server's back: cached, the count is stale for the TTL (10 s).
    const made = await makeAtVendor(stack, user, { title: 'hello', body: 'world', channel: 'push' });
    expect(made.status).toBe(201);
    expect((await stack.gql<AnyData>(UNREAD, { id: user })).body.data!.user).toEqual(before);
    // The vendor's event: read and delivered twice, and an older one after it.
    const event = created(user);
    const id = `msg_${randomUUID()}`;
    expect((await post(stack, event, { id })).status).toBe(202);
    await expect
      .poll(async () => (await stack.gql<AnyData>(UNREAD, { id: user })).body.data!.user.unreadNotificationCount, { timeout: 2000 })
      .toBe(before.unreadNotificationCount + 1);
    expect((await stack.gql<AnyData>(UNREAD, { id: user })).body.data!.user.notifications.totalCount).toBe(before.notifications.totalCount + 1);
    expect((await post(stack, event, { id })).status).toBe(202);
    expect((await post(stack, { type: 'notification.read', timestamp: new Date(0).toISOString(), data: { user, ids: [] } })).status).toBe(202);
    expect((await stack.gql<AnyData>(UNREAD, { id: user })).body.data!.user.unreadNotificationCount).toBe(before.unreadNotificationCount + 1);
  });

  it('the same notification sent again under a new webhook-id (a vendor that re-signs its retries) is published once; a new one is published', async () => {
    const stack = await stackWith();
    const user = stack.userId(45);
    const client = wsClient(stack, await stack.token({ sub: user, admin: false }));
    try {
      const sub = collect(client, `subscription($u: ID!) { notificationAdded(userId: $u) { id title } }`, { u: user });
      await new Promise((r) => setTimeout(r, 150));
      const event = created(user);
      for (let i = 0; i < 3; i++) expect(await (await post(stack, event)).json()).toEqual({ accepted: true });
      const another = created(user);
      expect((await post(stack, another)).status).toBe(202);
      expect(await eventually(() => sub.events.length >= 2, 2000)).toBe(true);
      await new Promise((r) => setTimeout(r, 300));
      // Each new webhook-id was a new event: the same notification reached the subscriber three times.
      expect(sub.events.map((e) => (e as AnyData).data.notificationAdded.id)).toEqual([event.data.id, another.data.id]);
      sub.stop();
    } finally {
      await client.dispose();
    }
  });

  it('an event whose body starts with a byte order mark is read as without it: accepted and acted on, not refused into retries', async () => {
    const stack = await stackWith();
    const user = stack.userId(43);
    const before = (await stack.gql<AnyData>(UNREAD, { id: user })).body.data!.user;
    const made = await makeAtVendor(stack, user, { title: 'hello', body: 'world', channel: 'push' });
    expect(made.status).toBe(201);
    expect((await post(stack, created(user), { byteOrderMark: true })).status).toBe(202);
    await expect
      .poll(async () => (await stack.gql<AnyData>(UNREAD, { id: user })).body.data!.user.unreadNotificationCount, { timeout: 2000 })
      .toBe(before.unreadNotificationCount + 1);
  });

  it('a vendor that sends its event before its own reads show the change: subscribers get the new count once it settles, the cache too', async () => {
    const stack = await stackWith();
    const user = stack.userId(44);
    const before = (await stack.gql<AnyData>(UNREAD, { id: user })).body.data!.user.unreadNotificationCount as number;
    const client = wsClient(stack, await stack.token({ sub: user, admin: false }));
    try {
      const sub = collect(client, `subscription($u: ID!) { unreadCount(userId: $u) }`, { u: user });
      await new Promise((r) => setTimeout(r, 100));
      // Made while the vendor's reads lag its writes by 1 s; its event is sent at once.
      await stack.faults('notifications', { readLagMs: 1_000 });
      const made = await makeAtVendor(stack, user, { title: 'early event', body: 'b', channel: 'push' });
      expect(made.status).toBe(201);
      await stack.faults('notifications', {});
      expect((await post(stack, created(user))).status).toBe(202);
      const last = () => (sub.events.at(-1) as AnyData | undefined)?.data?.unreadCount as number | undefined;
      // Read on the event, the count is still the old one; read again once settled (WEBHOOK_SETTLE_MS, 2 s), the new.
      expect(await eventually(() => last() === before + 1, 4_000)).toBe(true);
      expect((await stack.gql<AnyData>(UNREAD, { id: user })).body.data!.user.unreadNotificationCount).toBe(before + 1);
      sub.stop();
    } finally {
      await client.dispose();
    }
  });

  it('a subscriber that stops reading is ended with OVERLOADED past SUBSCRIPTION_HELD_EVENTS_MAX; the server stays up and another subscriber hears every event', async () => {
    await stalledSubscriber(await stackWith({ ops: (o) => ({ ...o, subscriptionHeldEventsMax: 20, subscriptionsPerCaller: 1 }) }));
  });

  it('an event stream whose client stopped reading is cut after SUBSCRIPTION_STALLED_CUT_MS; an idle stream that takes its keep-alives is not', async () => {
    const stack = await stackWith({ ops: (o) => ({ ...o, subscriptionHeldEventsMax: 20, subscriptionStalledCutMs: 1000 }) });
    const user = stack.userId(49);
    const token = await stack.token({ sub: user, admin: false });
    const body = JSON.stringify({ query: `subscription($u: ID!) { notificationAdded(userId: $u) { id body } }`, variables: { u: user } });
    const request = `POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    const open = (reading: boolean) => {
      const socket = connect(Number(new URL(stack.url).port), '127.0.0.1');
      const seen = { text: '', closed: false };
      socket
        .on('data', (d: Buffer) => (seen.text += d.toString()))
        .on('close', () => (seen.closed = true))
        .on('error', () => undefined);
      socket.write(request);
      if (!reading) socket.pause();
      return { socket, seen };
    };
    const idle = open(true);
    const stalled = open(false);
    try {
      await new Promise((r) => setTimeout(r, 300));
      // 24 MB for the stalled one: past what the loopback sockets buffer, so data waits in the server.
      for (let i = 0; i < 400; i++) {
        const event = created(user);
        event.data.body = 'b'.repeat(60_000);
        expect((await post(stack, event)).status).toBe(202);
      }
      expect(await eventually(() => stack.logs.some((l) => l.includes('took none of its data')), 5000)).toBe(true);
      stalled.socket.resume();
      expect(await eventually(() => stalled.seen.closed, 5000)).toBe(true);
      // Cut: what was buffered in the server, the OVERLOADED error and the end among it, never went out.
      expect(stalled.seen.text).not.toContain('event: complete');
      expect(stack.logs.filter((l) => l.includes('took none of its data'))).toHaveLength(1);
      // The one reading heard every event and is still open, past several cut periods with nothing to send.
      await new Promise((r) => setTimeout(r, 2500));
      expect(idle.seen.closed).toBe(false);
      expect([...idle.seen.text.matchAll(/^data: /gm)].length).toBe(400);
    } finally {
      idle.socket.destroy();
      stalled.socket.destroy();
    }
  });

  it('drift in events is noticed as in responses: unknown and retyped fields counted under webhook <type>; a retyped notification still drops the entries', async () => {
    const stack = await stackWith();
    const user = stack.userId(48);
    const before = (await stack.gql<AnyData>(UNREAD, { id: user })).body.data!.user.unreadNotificationCount as number;
    await makeAtVendor(stack, user, { title: 'x', body: 'y', channel: 'push' });
    const added = created(user);
    expect((await post(stack, { ...added, x_trace: { a: 1 }, data: { ...added.data, priority: 'high' } })).status).toBe(202);
    expect((await post(stack, { type: 'notification.read', timestamp: new Date().toISOString(), data: { user, ids: 'all' } })).status).toBe(202);
    const retyped = created(user);
    expect((await post(stack, { ...retyped, data: { ...retyped.data, created: 1_796_600_000 } })).status).toBe(202);
    const drift = async () =>
      (
        (await stack.gql<AnyData>(`{ sources { name drift { endpoint kind path } } }`)).body.data!.sources.find((s: AnyData) => s.name === 'notifications').drift as AnyData[]
      ).filter((d) => d.endpoint.startsWith('webhook '));
    await expect
      .poll(async () => (await drift()).map((d) => `${d.endpoint} ${d.kind} ${d.path}`).toSorted(), { timeout: 3000 })
      .toEqual([
        'webhook notification.created TYPE_CHANGED data.created',
        'webhook notification.created UNKNOWN data.priority',
        'webhook notification.created UNKNOWN x_trace',
        'webhook notification.read TYPE_CHANGED data.ids',
      ]);
    expect(await webhookCounts(stack)).toMatchObject({ accepted: 3 });
    expect((await stack.gql<AnyData>(UNREAD, { id: user })).body.data!.user.unreadNotificationCount).toBe(before + 1);

    // The simulated vendor's drift faults reach its events too.
    await fetch(`${stack.upstreams.notifications.url}/__admin/webhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ url: stack.url.replace('/graphql', '/webhooks/notifications'), secret: SECRET }),
    });
    try {
      await stack.faults('notifications', { extraFields: true });
      expect((await makeAtVendor(stack, user, { title: 'drifted', body: 'b', channel: 'push' })).status).toBe(201);
      await expect
        .poll(async () => (await drift()).map((d) => `${d.endpoint} ${d.kind} ${d.path}`), { timeout: 3000 })
        .toContain('webhook notification.created UNKNOWN data.x_drift');
    } finally {
      await stack.reset();
      await fetch(`${stack.upstreams.notifications.url}/__admin/webhook`, { method: 'DELETE' });
    }
  });

  it.each(['milliseconds', 'fractional-seconds'])('webhook-timestamp in %s is read as such: delivered, still held to the tolerance, and counted as drift', async (unit) => {
    const stack = await stackWith();
    const user = stack.userId(unit === 'milliseconds' ? 49 : 48);
    const before = (await stack.gql<AnyData>(UNREAD, { id: user })).body.data!.user.unreadNotificationCount as number;
    const admin = `${stack.upstreams.notifications.url}/__admin/webhook`;
    const target = { url: stack.url.replace('/graphql', '/webhooks/notifications'), secret: SECRET, timestampUnit: unit, retryDelaysMs: [] };
    await fetch(admin, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(target) });
    try {
      expect((await makeAtVendor(stack, user, { title: 'in ms', body: 'b', channel: 'push' })).status).toBe(201);
      await expect.poll(async () => ((await (await fetch(admin)).json()) as AnyData).delivered, { timeout: 3000 }).toBe(1);
      expect(((await (await fetch(admin)).json()) as AnyData).failedAttempts).toBe(0);
      await expect.poll(async () => (await stack.gql<AnyData>(UNREAD, { id: user })).body.data!.user.unreadNotificationCount, { timeout: 3000 }).toBe(before + 1);
    } finally {
      await fetch(admin, { method: 'DELETE' });
    }
    const drift = (await stack.gql<AnyData>(`{ sources { name drift { endpoint kind path } } }`)).body.data!.sources.find((s: AnyData) => s.name === 'notifications')
      .drift as AnyData[];
    expect(drift.filter((d) => d.endpoint === 'webhook').map((d) => `${d.kind} ${d.path}`)).toEqual(['TYPE_CHANGED header webhook-timestamp']);
    // Milliseconds ten minutes old are as old as seconds would be; fourteen digits are neither.
    const signedAt = (timestamp: string) => {
      const id = `msg_${randomUUID()}`;
      const body = JSON.stringify(created(user));
      const signature = createHmac('sha256', Buffer.from(SECRET.slice('whsec_'.length), 'base64'))
        .update(`${id}.${timestamp}.${body}`)
        .digest('base64');
      return fetch(stack.url.replace('/graphql', '/webhooks/notifications'), {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': `v1,${signature}` },
        body,
      });
    };
    expect((await signedAt(String(Date.now()))).status).toBe(202);
    expect((await signedAt(String(Date.now() - 10 * 60_000))).status).toBe(400);
    expect((await signedAt(String(Date.now() * 10))).status).toBe(400);
    // Seconds with a fraction: now, ten minutes old; a fraction on milliseconds is neither.
    expect((await signedAt((Date.now() / 1000).toFixed(3))).status).toBe(202);
    expect((await signedAt(((Date.now() - 10 * 60_000) / 1000).toFixed(3))).status).toBe(400);
    expect((await signedAt(`${Date.now()}.5`)).status).toBe(400);
    expect(stack.logs.some((l) => /webhook-timestamp 60\d s behind our clock/.test(l))).toBe(true);
  });

  it("an event type the contract does not name, about a user, still drops that user's entries (what it changed is not known)", async () => {
    const stack = await stackWith();
    const user = stack.userId(42);
    const before = (await stack.gql<AnyData>(UNREAD, { id: user })).body.data!.user;
    const made = await makeAtVendor(stack, user, { title: 'hello', body: 'world', channel: 'push' });
    expect(made.status).toBe(201);
    expect((await stack.gql<AnyData>(UNREAD, { id: user })).body.data!.user).toEqual(before);
    expect((await post(stack, { type: 'notification.archived', timestamp: new Date().toISOString(), data: { user, ids: [] } })).status).toBe(202);
    await expect
      .poll(async () => (await stack.gql<AnyData>(UNREAD, { id: user })).body.data!.user.unreadNotificationCount, { timeout: 2000 })
      .toBe(before.unreadNotificationCount + 1);
    // One without a user says nothing to act on: accepted, nothing dropped.
    expect((await post(stack, { type: 'account.closed', timestamp: new Date().toISOString(), data: { account: 'x' } })).status).toBe(202);
  });

  it('the simulated vendor signs what the spec says (checked with standardwebhooks), retries on its schedule, and may send twice', async () => {
    const stack = await stackWith();
    const receiver = await new ScriptedUpstream().start();
    try {
      let answers = [500, 500, 200];
      receiver.script = () => ({ status: answers.shift() ?? 200, body: {} });
      const admin = (body: unknown) =>
        fetch(`${stack.upstreams.notifications.url}/__admin/webhook`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      expect((await admin({ url: `${receiver.url}/hook`, secret: SECRET, retryDelaysMs: [50, 50] })).status).toBe(200);
      const user = stack.userId(42);
      await fetch(`${stack.upstreams.notifications.url}/v1/users/${encodeURIComponent(user)}/notifications/read`, {
        method: 'POST',
        headers: { authorization: `Bearer ${stack.upstreams.credentials.notificationsToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          ids: stack.upstreams.dataset
            .notificationsOf(42)
            .filter((n) => !n.read)
            .slice(0, 1)
            .map((n) => n.id),
        }),
      });
      await expect.poll(() => receiver.seen.length, { timeout: 2000 }).toBe(3);
      // Each attempt verifies with the reference implementation; the id is the same across retries.
      for (const req of receiver.seen) {
        const headers = {
          'webhook-id': String(req.headers['webhook-id']),
          'webhook-timestamp': String(req.headers['webhook-timestamp']),
          'webhook-signature': String(req.headers['webhook-signature']),
        };
        expect(signer.verify(req.body, headers)).toMatchObject({ type: 'notification.read', data: { user } });
      }
      expect(new Set(receiver.seen.map((r) => r.headers['webhook-id'])).size).toBe(1);
      const stats = (await (await fetch(`${stack.upstreams.notifications.url}/__admin/webhook`)).json()) as AnyData;
      expect(stats).toMatchObject({ sent: 1, delivered: 1, failedAttempts: 2, dropped: 0 });

      // A copy refused while the event itself went through: counted as a failed copy, not a dropped event.
      receiver.seen.length = 0;
      answers = [200, 503];
      expect((await admin({ url: `${receiver.url}/hook`, secret: SECRET, retryDelaysMs: [50], duplicateRate: 1 })).status).toBe(200);
      await makeAtVendor(stack, user, { title: 'copy refused', body: 'b', channel: 'email' });
      await expect.poll(() => receiver.seen.length, { timeout: 2000 }).toBe(2);
      await expect
        .poll(async () => (await (await fetch(`${stack.upstreams.notifications.url}/__admin/webhook`)).json()) as AnyData, { timeout: 2000 })
        .toMatchObject({ sent: 1, delivered: 1, dropped: 0, duplicatesDelivered: 0, duplicatesFailed: 1, pending: 0 });

      // Into the server itself, twice each: the server takes the first and recognises the second.
      answers = [];
      expect((await admin({ url: stack.url.replace('/graphql', '/webhooks/notifications'), secret: SECRET, retryDelaysMs: [50], duplicateRate: 1 })).status).toBe(200);
      await makeAtVendor(stack, user, { title: 'twice', body: 'b', channel: 'email' });
      await expect.poll(async () => (await webhookCounts(stack)).duplicate ?? 0, { timeout: 2000 }).toBe(1);
      expect((await webhookCounts(stack)).accepted).toBe(1);
      expect(await (await fetch(`${stack.upstreams.notifications.url}/__admin/webhook`)).json()).toMatchObject({ sent: 1, delivered: 1, duplicatesDelivered: 1, dropped: 0 });
    } finally {
      await fetch(`${stack.upstreams.notifications.url}/__admin/webhook`, { method: 'DELETE' });
      await receiver.close();
    }
  });

  it('the simulated vendor can re-sign an event under a new webhook-id and send events out of order', async () => {
    const stack = await stackWith();
    const receiver = await new ScriptedUpstream().start();
    try {
      receiver.script = () => ({ status: 200, body: {} });
      const admin = (body: unknown) =>
        fetch(`${stack.upstreams.notifications.url}/__admin/webhook`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const webhookStats = async () => (await (await fetch(`${stack.upstreams.notifications.url}/__admin/webhook`)).json()) as AnyData;
      const user = stack.userId(42);

      expect((await admin({ url: `${receiver.url}/hook`, secret: SECRET, resignRate: 1 })).status).toBe(200);
      await makeAtVendor(stack, user, { title: 'again', body: 'b', channel: 'email' });
      await expect.poll(() => receiver.seen.length, { timeout: 2000 }).toBe(2);
      // The same event under two ids, each signed for its own id.
      expect(new Set(receiver.seen.map((r) => r.headers['webhook-id'])).size).toBe(2);
      expect(receiver.seen[0]!.body).toBe(receiver.seen[1]!.body);
      for (const req of receiver.seen) {
        const headers = Object.fromEntries(['webhook-id', 'webhook-timestamp', 'webhook-signature'].map((h) => [h, String(req.headers[h])]));
        expect(signer.verify(req.body, headers)).toMatchObject({ type: 'notification.created' });
      }
      expect(await webhookStats()).toMatchObject({ sent: 2, delivered: 2, pending: 0 });

      receiver.seen.length = 0;
      expect((await admin({ url: `${receiver.url}/hook`, secret: SECRET, jitterMs: 1000 })).status).toBe(200);
      const titles = Array.from({ length: 20 }, (_, i) => `n${i}`);
      for (const title of titles) await makeAtVendor(stack, user, { title, body: 'b', channel: 'push' });
      expect((await webhookStats()).pending).toBeGreaterThan(0);
      await expect.poll(() => receiver.seen.length, { timeout: 3000 }).toBe(20);
      const arrived = receiver.seen.map((r) => (JSON.parse(r.body) as { data: { title: string } }).data.title);
      expect(arrived.toSorted()).toEqual(titles.toSorted());
      expect(arrived).not.toEqual(titles);
      expect(await webhookStats()).toMatchObject({ sent: 20, delivered: 20, dropped: 0, pending: 0 });
    } finally {
      await fetch(`${stack.upstreams.notifications.url}/__admin/webhook`, { method: 'DELETE' });
      await receiver.close();
    }
  });
});

describeWithRedis('webhooks across instances, through Redis', () => {
  const redis = new TestRedis();
  beforeAll(() => redis.start());
  afterAll(() => redis.stop());
  /** Two instances sharing one Redis under a fresh key prefix, both connected. */
  async function twoInstances(): Promise<[Stack, Stack]> {
    const prefix = `gwhook${randomBytes(3).toString('hex')}:`;
    const a = await stackWith({ redis: { url: redis.url, keyPrefix: prefix } });
    const b = await stackWith({ redis: { url: redis.url, keyPrefix: prefix }, peerOf: a });
    await expect.poll(() => a.gateway.redis!.available && b.gateway.redis!.available).toBe(true);
    return [a, b];
  }

  it('an event accepted by one instance is stored in Redis, invalidates the other instance too, and is a duplicate there', async () => {
    const [a, b] = await twoInstances();
    const user = a.userId(43);
    const before = (await b.gql<AnyData>(UNREAD, { id: user })).body.data!.user.unreadNotificationCount as number;
    await makeAtVendor(a, user, { title: 'x', body: 'y', channel: 'push' });
    const event = created(user);
    const id = `msg_${randomUUID()}`;
    expect(await (await post(a, event, { id })).json()).toEqual({ accepted: true });
    await expect.poll(async () => (await b.gql<AnyData>(UNREAD, { id: user })).body.data!.user.unreadNotificationCount, { timeout: 3000 }).toBe(before + 1);
    expect(await (await post(b, event, { id })).json()).toEqual({ duplicate: true });
  });

  it('an event processed leaves its id in Redis, not its body: a repeat is still a duplicate, and Redis holds less than 400 bytes an event', async () => {
    const prefix = `gwhook${randomBytes(3).toString('hex')}:`;
    const stack = await stackWith({ redis: { url: redis.url, keyPrefix: prefix } });
    await expect.poll(() => stack.gateway.redis!.available).toBe(true);
    const client = new Redis(redis.url);
    try {
      const user = stack.userId(45);
      const events = Array.from({ length: 200 }, () => ({ id: `msg_${randomUUID()}`, event: { ...created(user), padding: 'x'.repeat(2000) } }));
      for (const e of events) expect(await (await post(stack, e.event, { id: e.id })).json()).toEqual({ accepted: true });
      // Processed: no job is kept (its hash held the body), only bullmq's bookkeeping (its event stream is capped) and one key per id.
      const perEventKey = (k: string) => k.includes(':events:de:');
      const jobs = async () => (await client.keys(`{${prefix}webhooks}:*`)).filter((k) => !perEventKey(k) && !/:events:(events|meta|id|stalled-check)$/.test(k));
      await expect.poll(jobs, { timeout: 5000 }).toEqual([]);
      // Each event's id, and its notification's once key (announced once, whatever webhook id carried it).
      const kept = [...(await client.keys(`{${prefix}webhooks}:*`)).filter(perEventKey), ...(await client.keys(`{${prefix}live}:once:*`))];
      expect(kept.length).toBe(2 * events.length);
      let bytes = 0;
      for (const key of kept) bytes += (await client.memory('USAGE', key)) ?? 0;
      // Kept 25 h as a job, body and all, an event held over 2 KB (these carry 2 KB of padding).
      expect(bytes / events.length).toBeLessThan(400);
      expect(await client.pttl(`{${prefix}webhooks}:events:de:notifications/${events[0]!.id}`)).toBeGreaterThan(24 * 3600 * 1000);
      for (const e of events.slice(0, 3)) expect(await (await post(stack, e.event, { id: e.id })).json()).toEqual({ duplicate: true });
    } finally {
      client.disconnect();
    }
  });

  it('a subscriber that stops reading, events through Redis pub/sub: it is ended with OVERLOADED, the process stays up', async () => {
    const stack = await stackWith({
      redis: { url: redis.url, keyPrefix: `gwhook${randomBytes(3).toString('hex')}:` },
      ops: (o) => ({ ...o, subscriptionHeldEventsMax: 20, subscriptionsPerCaller: 1 }),
    });
    await expect.poll(() => stack.gateway.redis!.available).toBe(true);
    await stalledSubscriber(stack);
  });

  it('a subscriber that came while Redis was away, longer than ioredis retries a command (20 reconnections, ~10 s), hears events once Redis is back', async () => {
    const own = new TestRedis();
    await own.start();
    try {
      const stack = await stackWith({ redis: { url: own.url, keyPrefix: `gwhook${randomBytes(3).toString('hex')}:` } });
      await expect.poll(() => stack.gateway.redis!.available).toBe(true);
      await own.stop();
      const user = stack.userId(49);
      const client = wsClient(stack, await stack.token({ sub: user, admin: false }));
      try {
        const sub = collect(client, `subscription($u: ID!) { notificationAdded(userId: $u) { id } }`, { u: user });
        await new Promise((r) => setTimeout(r, 12_000));
        await own.start();
        await expect.poll(() => stack.gateway.redis!.available, { timeout: 10_000 }).toBe(true);
        const event = created(user);
        await expect.poll(async () => (await post(stack, event)).status, { timeout: 5000 }).toBe(202);
        // Before, its SUBSCRIBE had been dropped while Redis was away: the stream stayed open and heard nothing, ever.
        expect(await eventually(() => sub.events.length >= 1, 5000)).toBe(true);
        expect(sub.events).toEqual([{ data: { notificationAdded: { id: event.data.id } } }]);
        sub.stop();
      } finally {
        await client.dispose();
      }
    } finally {
      await own.stop();
    }
  }, 40_000);

  it('the same notification under two webhook-ids, one to each instance: its subscriber hears it once', async () => {
    const [a, b] = await twoInstances();
    const user = a.userId(46);
    const client = wsClient(b, await b.token({ sub: user, admin: false }));
    try {
      const sub = collect(client, `subscription($u: ID!) { notificationAdded(userId: $u) { id } }`, { u: user });
      await new Promise((r) => setTimeout(r, 200));
      const event = created(user);
      expect((await post(a, event)).status).toBe(202);
      expect((await post(b, event)).status).toBe(202);
      expect(await eventually(() => sub.events.length >= 1, 3000)).toBe(true);
      await new Promise((r) => setTimeout(r, 500));
      expect(sub.events).toEqual([{ data: { notificationAdded: { id: event.data.id } } }]);
      sub.stop();
    } finally {
      await client.dispose();
    }
  });

  it("a notification whose announcement Redis refused (its stream key holding another type) is announced by the job's retry, once", async () => {
    const prefix = `gwhook${randomBytes(3).toString('hex')}:`;
    const stack = await stackWith({ redis: { url: redis.url, keyPrefix: prefix } });
    await expect.poll(() => stack.gateway.redis!.available).toBe(true);
    const control = new Redis(redis.url);
    const user = stack.userId(47);
    const client = wsClient(stack, await stack.token({ sub: user, admin: false }));
    try {
      const sub = collect(client, `subscription($u: ID!) { notificationAdded(userId: $u) { id } }`, { u: user });
      await new Promise((r) => setTimeout(r, 200));
      await control.del(`{${prefix}live}:events`);
      await control.set(`{${prefix}live}:events`, 'not a stream');
      const event = created(user);
      expect((await post(stack, event)).status).toBe(202);
      await expect
        .poll(() => stack.logs.filter((l) => l.includes('Webhook event processing failed; retrying') && l.includes('WRONGTYPE')).length, { timeout: 5000 })
        .toBeGreaterThan(0);
      expect(sub.events).toEqual([]);
      await control.del(`{${prefix}live}:events`);
      // The job's next attempt (backoff 1 s, 2 s, …) announces it: the once key was not taken by the failed one.
      expect(await eventually(() => sub.events.length >= 1, 8000)).toBe(true);
      await new Promise((r) => setTimeout(r, 500));
      expect(sub.events).toEqual([{ data: { notificationAdded: { id: event.data.id } } }]);
      sub.stop();
    } finally {
      await client.dispose();
      control.disconnect();
    }
  }, 20_000);

  it('an event with a field nested 6,000 levels deep (vendor metadata) is stored and processed like any other, not refused at every retry', async () => {
    const stack = await stackWith({ redis: { url: redis.url, keyPrefix: `gwhook${randomBytes(3).toString('hex')}:` } });
    await expect.poll(() => stack.gateway.redis!.available).toBe(true);
    const user = stack.userId(44);
    const before = (await stack.gql<AnyData>(UNREAD, { id: user })).body.data!.user.unreadNotificationCount as number;
    await makeAtVendor(stack, user, { title: 'x', body: 'y', channel: 'push' });
    const deep = `${'{"a":'.repeat(6000)}1${'}'.repeat(6000)}`;
    const body = JSON.stringify(created(user)).replace(/}$/, `,"meta":${deep}}`);
    // Parsed, then stringified again for Redis: JSON.stringify threw, and the answer was 503 every time the vendor tried.
    const res = await post(stack, body);
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ accepted: true });
    await expect.poll(async () => (await stack.gql<AnyData>(UNREAD, { id: user })).body.data!.user.unreadNotificationCount, { timeout: 3000 }).toBe(before + 1);
  });
});
