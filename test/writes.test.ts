import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeWithRedis, TestRedis } from './helpers/redis.js';
import { calls, stackPool, type Stack, type StackOptions } from './helpers/stack.js';

/**
 * The write model, checked where the writes land: the simulated upstreams'
 * stats (PATCHes, POSTs) and the audit log's own listing of events.
 */
type AnyData = Record<string, any>;

const PATCH = 'PATCH /api/v2/users/:id';
const SEND = 'POST /v1/notifications';
const READ = 'POST /v1/users/:id/notifications/read';
const AUDIT = 'POST /v1/events';

const UPDATE = `mutation($input: UpdateProfileInput!) {
  updateProfile(input: $input) {
    status idempotencyKey replayed
    deliveries { id target primary state attempts operation error { code retryable } }
    user { id name nickname }
  }
}`;
const SEND_NOTIFICATION = `mutation($input: SendNotificationInput!) {
  sendNotification(input: $input) {
    status replayed
    deliveries { target state attempts error { code retryable } }
    notification { id title body channel read }
  }
}`;
const MARK_READ = `mutation($userId: ID!, $ids: [ID!]!) {
  markNotificationsRead(userId: $userId, ids: $ids) { status updated deliveries { target state } }
}`;
const DELIVERIES = `query($state: DeliveryState) { deliveries(state: $state, first: 50) { edges { node { id target state attempts operation error { code } } } pageInfo { hasNextPage } } }`;

const stackWith = stackPool((options) => ({ ...options, cache: { enabled: true, ...options.cache }, writes: { deliveryBackoffMs: 100, ...options.writes } }));

/** The events the audit log holds for a target, read from the audit API itself. */
async function auditEvents(stack: Stack, target: string): Promise<AnyData[]> {
  const res = await fetch(`${stack.upstreams.audit.url}/v1/events?target=${encodeURIComponent(target)}&limit=1000`, {
    headers: { 'x-api-key': stack.upstreams.credentials.auditApiKey },
  });
  return ((await res.json()) as { data: AnyData[] }).data;
}

async function writeCalls(stack: Stack): Promise<Record<string, number>> {
  const [identity, notifications, audit] = await Promise.all([stack.stats('identity'), stack.stats('notifications'), stack.stats('audit')]);
  return { patch: calls(identity, PATCH), send: calls(notifications, SEND), read: calls(notifications, READ), audit: calls(audit, AUDIT) };
}

describe('a vendor whose reads lag its writes (a replica): what a write dropped is dropped again once they settle', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await stackWith({ writes: { settleMs: 2000 } });
  });

  it('sendNotification: the count and first page read in the lag are the old ones, and the new ones within the settle, not after the TTL (10 s)', async () => {
    const id = stack.userId(207);
    const READ_BOTH = `query($id: ID!) { user(id: $id) { unreadNotificationCount notifications(first: 3) { totalCount edges { node { id } } } } }`;
    const read = async () => (await stack.gql<AnyData>(READ_BOTH, { id })).body.data!.user;
    const before = await read();
    // Made while the vendor's lists and counts lag its writes by 1 s.
    await stack.faults('notifications', { readLagMs: 1000 });
    const sent = await stack.gql<AnyData>(SEND_NOTIFICATION, { input: { userId: id, title: 'Lagged', body: 'b', channel: 'IN_APP' } });
    await stack.faults('notifications', {});
    expect(sent.body.data!.sendNotification.status).toBe('COMPLETE');
    const made = sent.body.data!.sendNotification.notification.id as string;
    const sentAt = Date.now();
    // Read in the lag: the vendor's old answer, now cached.
    const inLag = await read();
    expect(inLag.unreadNotificationCount).toBe(before.unreadNotificationCount);
    expect(inLag.notifications.edges.map((e: AnyData) => e.node.id)).not.toContain(made);
    const counts = calls(await stack.stats('notifications'), 'GET /v1/unread-counts');
    await new Promise((r) => setTimeout(r, Math.max(0, sentAt + 1200 - Date.now())));
    // Lag over, settle (2 s) not yet: still the cached old answer, no vendor call.
    expect((await read()).unreadNotificationCount).toBe(before.unreadNotificationCount);
    expect(calls(await stack.stats('notifications'), 'GET /v1/unread-counts')).toBe(counts);
    await expect.poll(async () => (await read()).unreadNotificationCount, { timeout: 3000, interval: 50 }).toBe(before.unreadNotificationCount + 1);
    expect(Date.now() - sentAt).toBeLessThan(4000);
    const settled = await read();
    expect(settled.notifications.totalCount).toBe(before.notifications.totalCount + 1);
    expect(settled.notifications.edges[0].node.id).toBe(made);
  });

  it("updateProfile: the user list read while identity's search lags shows the new name once it settles; the user by id shows it at once", async () => {
    const id = stack.userId(2);
    const LIST = `{ userList(first: 5) { edges { node { id name } } } }`;
    const nameInList = async () => ((await stack.gql<AnyData>(LIST, {})).body.data!.userList.edges as AnyData[]).find((e) => e.node.id === id)?.node.name as string | undefined;
    const old = await nameInList();
    expect(old).toBeDefined();
    await stack.faults('identity', { searchLagMs: 1000 });
    try {
      const res = await stack.gql<AnyData>(UPDATE, { input: { userId: id, name: 'Settled Name' } });
      expect(res.body.data!.updateProfile.status).toBe('COMPLETE');
      expect(await nameInList()).toBe(old);
      expect((await stack.gql<AnyData>(`query($id: ID!) { user(id: $id) { name } }`, { id })).body.data!.user.name).toBe('Settled Name');
      await expect.poll(nameInList, { timeout: 3000, interval: 50 }).toBe('Settled Name');
    } finally {
      await stack.faults('identity', {});
    }
  });
});

describe('mutations: primary and secondary, both delivered', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await stackWith({});
  });

  it('updateProfile: COMPLETE, one PATCH, one audit event, and the cached profile is dropped', async () => {
    const id = stack.userId(200);
    const token = await stack.token({ sub: id, admin: false });
    const before = await stack.gql<AnyData>(`query($id: ID!) { user(id: $id) { name } }`, { id }, { token });
    const res = await stack.gql<AnyData>(UPDATE, { input: { userId: id, name: 'Grace Hopper', nickname: 'amazing-grace' } }, { token });
    expect(res.body.errors).toBeUndefined();
    const payload = res.body.data!.updateProfile;
    expect(payload.status).toBe('COMPLETE');
    expect(payload.replayed).toBe(false);
    expect(payload.user).toEqual({ id, name: 'Grace Hopper', nickname: 'amazing-grace' });
    expect(payload.deliveries).toEqual([
      expect.objectContaining({ target: 'IDENTITY', primary: true, state: 'DELIVERED', attempts: 1, operation: 'updateProfile', error: null }),
      expect.objectContaining({ target: 'AUDIT', primary: false, state: 'DELIVERED', attempts: 1, operation: 'updateProfile', error: null }),
    ]);
    expect((await writeCalls(stack)).patch).toBe(1);
    const events = await auditEvents(stack, id);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ actor: id, action: 'profile.update', target: id, details: { fields: ['name', 'nickname'] } });
    // The read after the write sees the write: the profile entry was invalidated.
    expect(before.body.data!.user.name).not.toBe('Grace Hopper');
    const after = await stack.gql<AnyData>(`query($id: ID!) { user(id: $id) { name } }`, { id }, { token });
    expect(after.body.data!.user.name).toBe('Grace Hopper');
  });

  it("the read after updateProfile sees the write though the vendor's search still lists the old profile: the PATCH's answer is cached", async () => {
    const id = stack.userId(206);
    const token = await stack.token({ sub: id, admin: false });
    const NAME = `query($id: ID!) { user(id: $id) { name nickname } }`;
    expect((await stack.gql<AnyData>(NAME, { id }, { token })).body.data!.user.name).not.toBe('Index Behind');
    // Auth0's search is eventually consistent: for 5 s it lists the user as before the PATCH.
    await stack.faults('identity', { searchLagMs: 5_000 });
    try {
      const res = await stack.gql<AnyData>(UPDATE, { input: { userId: id, name: 'Index Behind' } }, { token });
      expect(res.body.data!.updateProfile.status).toBe('COMPLETE');
      const searches = calls(await stack.stats('identity'), 'GET /api/v2/users?q');
      const after = await stack.gql<AnyData>(NAME, { id }, { token });
      expect(after.body.errors).toBeUndefined();
      expect(after.body.data!.user).toEqual({ name: 'Index Behind', nickname: res.body.data!.updateProfile.user.nickname });
      expect(calls(await stack.stats('identity'), 'GET /api/v2/users?q') - searches).toBe(0);
    } finally {
      await stack.faults('identity', {});
    }
  });

  it('sendNotification and markNotificationsRead: COMPLETE, and the unread count reflects each at once', async () => {
    const id = stack.userId(201);
    const count = async () => (await stack.gql<AnyData>(`query($id: ID!) { user(id: $id) { unreadNotificationCount } }`, { id })).body.data!.user.unreadNotificationCount as number;
    const unread = await count();
    const sent = await stack.gql<AnyData>(SEND_NOTIFICATION, { input: { userId: id, title: 'Welcome', body: 'Hello there', channel: 'IN_APP' } });
    expect(sent.body.errors).toBeUndefined();
    expect(sent.body.data!.sendNotification).toMatchObject({ status: 'COMPLETE', notification: { title: 'Welcome', body: 'Hello there', channel: 'IN_APP', read: false } });
    expect(await count()).toBe(unread + 1);

    const read = await stack.gql<AnyData>(MARK_READ, { userId: id, ids: [sent.body.data!.sendNotification.notification.id] });
    expect(read.body.data!.markNotificationsRead).toMatchObject({ status: 'COMPLETE', updated: 1 });
    expect(await count()).toBe(unread);
    expect((await auditEvents(stack, id)).map((e) => e.action).sort()).toEqual(['notification.send', 'notifications.read']);
  });

  it('a user changes only their own data; an admin anyone', async () => {
    const owner = stack.userId(202);
    const other = await stack.token({ sub: stack.userId(203), admin: false });
    await stack.reset();
    const refused = await stack.gql<AnyData>(UPDATE, { input: { userId: owner, name: 'Mallory' } }, { token: other });
    expect(refused.body.errors![0]!.extensions!.code).toBe('FORBIDDEN');
    const refusedSend = await stack.gql<AnyData>(SEND_NOTIFICATION, { input: { userId: owner, title: 'x', body: 'y', channel: 'EMAIL' } }, { token: other });
    expect(refusedSend.body.errors![0]!.extensions!.code).toBe('FORBIDDEN');
    expect(await writeCalls(stack)).toEqual({ patch: 0, send: 0, read: 0, audit: 0 });
    const admin = await stack.gql<AnyData>(UPDATE, { input: { userId: owner, nickname: 'by-admin' } });
    expect(admin.body.data!.updateProfile.status).toBe('COMPLETE');
  });
});

describe('a target that takes the write and answers with a body that drifted', () => {
  it('is a delivered write: COMPLETE, no result and the reason, written once; an audit event so answered is delivered, not dead', async () => {
    const stack = await stackWith({});
    const id = stack.userId(205);
    const count = async () => (await stack.gql<AnyData>(`query($id: ID!) { user(id: $id) { unreadNotificationCount } }`, { id })).body.data!.user.unreadNotificationCount as number;
    const unread = await count();
    const from = stack.logs.length;
    await stack.faults('notifications', { renameFields: { created: 'created_at' }, routes: [SEND] });
    await stack.faults('identity', { renameFields: { user_id: 'id' }, routes: [PATCH] });
    await stack.faults('audit', { renameFields: { received_at: 'receivedAt' }, routes: [AUDIT] });

    const sent = await stack.gql<AnyData>(SEND_NOTIFICATION, { input: { userId: id, title: 'Drifted', body: 'Still sent', channel: 'PUSH' } });
    expect(sent.body.errors).toBeUndefined();
    expect(sent.body.data!.sendNotification).toMatchObject({
      status: 'COMPLETE',
      notification: null,
      deliveries: [
        { target: 'NOTIFICATIONS', state: 'DELIVERED', attempts: 1, error: { code: 'SOURCE_BAD_RESPONSE' } },
        { target: 'AUDIT', state: 'DELIVERED', attempts: 1, error: null },
      ],
    });
    const updated = await stack.gql<AnyData>(UPDATE, { input: { userId: id, nickname: 'drifted' } });
    expect(updated.body.data!.updateProfile).toMatchObject({
      status: 'COMPLETE',
      user: null,
      deliveries: [{ target: 'IDENTITY', state: 'DELIVERED', error: { code: 'SOURCE_BAD_RESPONSE' } }, { state: 'DELIVERED' }],
    });

    // Each written once, and there: the notification counts, the nickname reads back, both audit events are recorded.
    expect(await writeCalls(stack)).toMatchObject({ patch: 1, send: 1, audit: 2 });
    expect(await count()).toBe(unread + 1);
    expect((await stack.gql<AnyData>(`query($id: ID!) { user(id: $id) { nickname } }`, { id })).body.data!.user.nickname).toBe('drifted');
    expect((await auditEvents(stack, id)).map((e) => e.action).sort()).toEqual(['notification.send', 'profile.update']);
    expect((await stack.gql<AnyData>(DELIVERIES, { state: 'FAILED' })).body.data!.deliveries.edges).toEqual([]);
    const lines = stack.logs.slice(from).map((l) => JSON.parse(l) as AnyData);
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
    expect(lines.filter((l) => l.msg.startsWith('Primary write accepted')).map((l) => l.target)).toEqual(['NOTIFICATIONS', 'IDENTITY']);
  });

  it('a 2xx whose body stops arriving (a proxy dying mid-answer) is a delivered write too: COMPLETE, not FAILED, and the audit event is not dead-lettered', async () => {
    // Each attempt's body times out (1 s) and is tried again with its key; the request's deadline (3 s) cuts the last.
    const stack = await stackWith({});
    const id = stack.userId(211);
    const from = stack.logs.length;
    await stack.faults('notifications', { down: 'stall', routes: [SEND] });
    await stack.faults('audit', { down: 'stall', routes: [AUDIT] });
    const sent = await stack.gql<AnyData>(SEND_NOTIFICATION, { input: { userId: id, title: 'Stalled', body: 'Sent all the same', channel: 'PUSH', idempotencyKey: 'stalled-1' } });
    await stack.faults('notifications', {});
    await stack.faults('audit', {});
    expect(sent.body.errors).toBeUndefined();
    expect(sent.body.data!.sendNotification).toMatchObject({
      status: 'COMPLETE',
      notification: null,
      deliveries: [
        { target: 'NOTIFICATIONS', state: 'DELIVERED', error: { code: 'SOURCE_TIMEOUT' } },
        { target: 'AUDIT', state: 'DELIVERED', error: null },
      ],
    });
    // The vendors hold one of each; nothing waits to be sent again, nothing is dead.
    const notifications = await fetch(`${stack.upstreams.notifications.url}/v1/users/${encodeURIComponent(id)}/notifications?per_page=100`, {
      headers: { authorization: `Bearer ${stack.upstreams.credentials.notificationsToken}` },
    }).then((r) => r.json() as Promise<AnyData[]>);
    expect(notifications.filter((n) => n.title === 'Stalled')).toHaveLength(1);
    expect((await auditEvents(stack, id)).map((e) => e.action)).toEqual(['notification.send']);
    expect((await stack.gql<AnyData>(DELIVERIES, { state: 'FAILED' })).body.data!.deliveries.edges).toEqual([]);
    expect((await stack.gql<AnyData>(DELIVERIES, { state: 'QUEUED' })).body.data!.deliveries.edges).toEqual([]);
    const lines = stack.logs.slice(from).map((l) => JSON.parse(l) as AnyData);
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
    expect(lines.filter((l) => l.msg.startsWith('Primary write accepted')).map((l) => [l.target, l.code])).toEqual([['NOTIFICATIONS', 'SOURCE_TIMEOUT']]);
  });

  it("a 201 whose notification is another user's (a vendor's bug, a proxy's mix-up): delivered once, no result, the other user's notification never shown", async () => {
    const stack = await stackWith({});
    const id = stack.userId(208);
    const other = stack.userId(209);
    const from = stack.logs.length;
    await stack.faults('notifications', { setFields: { user: other }, routes: [SEND] });
    const sent = await stack.gql<AnyData>(SEND_NOTIFICATION, { input: { userId: id, title: 'Mine', body: 'For me', channel: 'PUSH' } });
    await stack.faults('notifications', {});
    expect(sent.body.errors).toBeUndefined();
    expect(sent.body.data!.sendNotification).toMatchObject({
      status: 'COMPLETE',
      notification: null,
      deliveries: [
        { target: 'NOTIFICATIONS', state: 'DELIVERED', attempts: 1, error: { code: 'SOURCE_BAD_RESPONSE', retryable: false } },
        { target: 'AUDIT', state: 'DELIVERED' },
      ],
    });
    expect(await writeCalls(stack)).toMatchObject({ send: 1, audit: 1 });
    const lines = stack.logs.slice(from).map((l) => JSON.parse(l) as AnyData);
    expect(lines.filter((l) => l.msg.startsWith('Primary write accepted')).map((l) => l.detail)).toEqual([
      'POST /v1/notifications: the answer is about another user than the one asked',
    ]);
  });
});

describe('idempotency', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await stackWith({});
  });

  it('the same mutation with the same key returns the first payload and writes nothing again', async () => {
    const id = stack.userId(210);
    const input = { userId: id, name: 'Ada Lovelace', idempotencyKey: 'key-210' };
    const first = await stack.gql<AnyData>(UPDATE, { input });
    const second = await stack.gql<AnyData>(UPDATE, { input });
    expect(first.body.data!.updateProfile.status).toBe('COMPLETE');
    expect(second.body.data!.updateProfile).toEqual({ ...first.body.data!.updateProfile, replayed: true });
    expect(await writeCalls(stack)).toMatchObject({ patch: 1, audit: 1 });
    expect(await auditEvents(stack, id)).toHaveLength(1);

    const send = { userId: id, title: 'Once', body: 'only once', channel: 'PUSH', idempotencyKey: 'key-210-send' };
    const results = await Promise.all([1, 2, 3].map(() => stack.gql<AnyData>(SEND_NOTIFICATION, { input: send })));
    const ids = new Set(results.map((r) => r.body.data!.sendNotification.notification.id));
    expect(ids.size).toBe(1);
    expect(results.filter((r) => r.body.data!.sendNotification.replayed === false)).toHaveLength(1);
    expect((await writeCalls(stack)).send).toBe(1);
  });

  it('the vendor still processing an earlier attempt (409 for its key): a retryable error, and the same key again completes, one notification', async () => {
    const id = stack.userId(214);
    // Each key held 2.5 s: the first attempt times out after 1 s (undici's timers fire up to 1 s late), the next ones meet
    // the key in use.
    await stack.faults('notifications', { writeHoldMs: 2_500 });
    const input = { userId: id, title: 'Held', body: 'key in use', channel: 'EMAIL', idempotencyKey: 'key-214' };
    const started = Date.now();
    try {
      const first = (await stack.gql<AnyData>(SEND_NOTIFICATION, { input })).body.data!.sendNotification;
      expect((await stack.stats('notifications')).routes[SEND]!.statuses['409']).toBeGreaterThanOrEqual(1);
      // Told to try again; or, when a late timer let an attempt come after the first was done, its answer again.
      if (first.status !== 'COMPLETE') {
        expect(first).toMatchObject({ status: 'FAILED', deliveries: [{ target: 'NOTIFICATIONS', state: 'FAILED', error: { code: 'SOURCE_UNAVAILABLE', retryable: true } }, {}] });
      }
    } finally {
      await stack.faults('notifications', {});
    }
    // Once the vendor is done with the first request, the same key again gets its answer.
    await new Promise((r) => setTimeout(r, Math.max(0, started + 2_700 - Date.now())));
    const again = (await stack.gql<AnyData>(SEND_NOTIFICATION, { input })).body.data!.sendNotification;
    expect(again).toMatchObject({ status: 'COMPLETE', notification: { title: 'Held' } });
    const listed = await stack.gql<AnyData>(`query($id: ID!) { user(id: $id) { notifications(first: 100) { edges { node { title } } } } }`, { id });
    expect(listed.body.data!.user.notifications.edges.filter((e: AnyData) => e.node.title === 'Held')).toHaveLength(1);
  });

  it('the same key with different input is BAD_USER_INPUT, and nothing is written', async () => {
    const id = stack.userId(211);
    await stack.gql(UPDATE, { input: { userId: id, name: 'First', idempotencyKey: 'key-211' } });
    await stack.reset();
    const res = await stack.gql<AnyData>(UPDATE, { input: { userId: id, name: 'Second', idempotencyKey: 'key-211' } });
    expect(res.body.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'idempotencyKey' });
    expect(await writeCalls(stack)).toEqual({ patch: 0, send: 0, read: 0, audit: 0 });
  });

  it("keys are per caller: another user's identical key is a different request", async () => {
    const a = stack.userId(212);
    const b = stack.userId(213);
    const ra = await stack.gql<AnyData>(UPDATE, { input: { userId: a, name: 'A', idempotencyKey: 'shared' } }, { token: await stack.token({ sub: a, admin: false }) });
    const rb = await stack.gql<AnyData>(UPDATE, { input: { userId: b, name: 'B', idempotencyKey: 'shared' } }, { token: await stack.token({ sub: b, admin: false }) });
    expect(ra.body.data!.updateProfile.user.name).toBe('A');
    expect(rb.body.data!.updateProfile).toMatchObject({ replayed: false, user: { name: 'B' } });
  });
});

describe('bad input: BAD_USER_INPUT naming the field, nothing written anywhere', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await stackWith({});
  });

  it.each([
    ['an empty title', { title: '', body: 'b', channel: 'EMAIL' }, 'title'],
    ['a blank title', { title: '   ', body: 'b', channel: 'EMAIL' }, 'title'],
    ['an over-long body', { title: 't', body: 'x'.repeat(5001), channel: 'EMAIL' }, 'body'],
    ['an unknown user', { title: 't', body: 'b', channel: 'EMAIL', userId: 'auth0|nobody-at-all' }, 'userId'],
  ])('sendNotification with %s', async (_what, fields, argument) => {
    await stack.reset();
    const res = await stack.gql<AnyData>(SEND_NOTIFICATION, { input: { userId: stack.userId(220), ...fields } });
    expect(res.status).toBe(200);
    expect(res.body.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument });
    expect(res.body.errors![0]!.message).toContain(argument);
    expect(await writeCalls(stack)).toEqual({ patch: 0, send: 0, read: 0, audit: 0 });
  });

  it('an unknown channel', async () => {
    const res = await stack.gql<AnyData>(SEND_NOTIFICATION, { input: { userId: stack.userId(220), title: 't', body: 'b', channel: 'FAX' } });
    expect(res.status).toBeLessThan(500);
    expect(res.body.errors![0]!.extensions!.code).toBe('BAD_USER_INPUT');
    expect(res.body.errors![0]!.message).toContain('channel');
    expect(await writeCalls(stack)).toEqual({ patch: 0, send: 0, read: 0, audit: 0 });
  });

  it('updateProfile for an unknown user: identity’s 404, mapped', async () => {
    await stack.reset();
    const res = await stack.gql<AnyData>(UPDATE, { input: { userId: 'auth0|nobody-at-all', name: 'X' } });
    expect(res.body.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'userId' });
    expect(calls(await stack.stats('identity'), 'GET /api/v2/users/:id')).toBe(1);
    expect(await writeCalls(stack)).toEqual({ patch: 0, send: 0, read: 0, audit: 0 });
  });

  it('updateProfile with nothing to change, or a bad avatar URL', async () => {
    const none = await stack.gql<AnyData>(UPDATE, { input: { userId: stack.userId(221) } });
    expect(none.body.errors![0]!.extensions!.code).toBe('BAD_USER_INPUT');
    const url = await stack.gql<AnyData>(UPDATE, { input: { userId: stack.userId(221), avatarUrl: 'javascript:alert(1)' } });
    expect(url.body.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'avatarUrl' });
    expect(await writeCalls(stack)).toEqual({ patch: 0, send: 0, read: 0, audit: 0 });
  });
});

/** The same delivery behaviour with either queue. */
function deliverySuite(name: string, options: () => StackOptions) {
  describe(name, () => {
    let stack: Stack;
    beforeAll(async () => {
      stack = await stackWith({ ...options(), writes: { deliveryBackoffMs: 100, deliveryMaxAttempts: 4 }, tuning: { audit: { retryMaxAttempts: 1 } } });
    });

    it('audit down: PARTIAL with the audit QUEUED; audit back: delivered exactly once', async () => {
      const id = stack.userId(230);
      await stack.faults('audit', { errorRate: 1 });
      const res = await stack.gql<AnyData>(UPDATE, { input: { userId: id, name: 'Queued Once' } });
      const payload = res.body.data!.updateProfile;
      expect(payload.status).toBe('PARTIAL');
      expect(payload.user.name).toBe('Queued Once');
      expect(payload.deliveries[1]).toMatchObject({ target: 'AUDIT', state: 'QUEUED', attempts: 1, error: { code: 'SOURCE_UNAVAILABLE', retryable: true } });
      await stack.faults('audit', {});
      await expect.poll(async () => (await auditEvents(stack, id)).length, { timeout: 10_000 }).toBe(1);
      const listed = await stack.gql<AnyData>(DELIVERIES, { state: 'DELIVERED' });
      expect(listed.body.data!.deliveries.edges.map((e: AnyData) => e.node.id)).toContain(payload.deliveries[1].id);
    });

    it('after the last attempt: dead-lettered (FAILED), listed, re-driven by retryDelivery', async () => {
      const id = stack.userId(231);
      await stack.faults('audit', { errorRate: 1 });
      const res = await stack.gql<AnyData>(UPDATE, { input: { userId: id, name: 'Dead Letter' } });
      const deliveryId = res.body.data!.updateProfile.deliveries[1].id as string;
      await expect
        .poll(async () => ((await stack.gql<AnyData>(DELIVERIES, { state: 'FAILED' })).body.data!.deliveries.edges as AnyData[]).find((e) => e.node.id === deliveryId)?.node, {
          timeout: 15_000,
        })
        .toMatchObject({ state: 'FAILED', attempts: 4, error: { code: 'SOURCE_UNAVAILABLE' } });
      expect(calls(await stack.stats('audit'), AUDIT)).toBeGreaterThanOrEqual(4);

      const notAdmin = await stack.gql<AnyData>(
        `mutation($id: ID!) { retryDelivery(id: $id) { state } }`,
        { id: deliveryId },
        { token: await stack.token({ sub: id, admin: false }) },
      );
      expect(notAdmin.body.errors![0]!.extensions!.code).toBe('FORBIDDEN');
      const notAdminList = await stack.gql<AnyData>(DELIVERIES, {}, { token: await stack.token({ sub: id, admin: false }) });
      expect(notAdminList.body.errors![0]!.extensions!.code).toBe('FORBIDDEN');

      await stack.faults('audit', {});
      const retried = await stack.gql<AnyData>(`mutation($id: ID!) { retryDelivery(id: $id) { id state } }`, { id: deliveryId });
      expect(retried.body.data!.retryDelivery).toEqual({ id: deliveryId, state: 'QUEUED' });
      await expect.poll(async () => (await auditEvents(stack, id)).length, { timeout: 10_000 }).toBe(1);
      const again = await stack.gql<AnyData>(`mutation($id: ID!) { retryDelivery(id: $id) { id state } }`, { id: deliveryId });
      expect(again.body.errors![0]!.extensions!.code).toBe('BAD_USER_INPUT');
    });

    it('audit still processing an earlier attempt when the next comes (409 for its key): retried, delivered once, never dead', async () => {
      const own = await stackWith({ ...options(), writes: { deliveryBackoffMs: 200, deliveryMaxAttempts: 10 }, tuning: { audit: { retryMaxAttempts: 1 } } });
      const id = own.userId(233);
      // Each key held 3.5 s: the inline attempt times out after audit's 2 s (undici's timers fire up to 1 s late), the
      // queue's next attempts meet the key in use, and a later one gets the first answer again.
      await own.faults('audit', { writeHoldMs: 3_500 });
      const payload = (await own.gql<AnyData>(UPDATE, { input: { userId: id, name: 'Held Key' } })).body.data!.updateProfile;
      expect(payload.status).toBe('PARTIAL');
      const deliveryId = payload.deliveries[1].id as string;
      const stateOf = async () =>
        ((await own.gql<AnyData>(DELIVERIES, {})).body.data!.deliveries.edges as AnyData[]).find((e) => e.node.id === deliveryId)?.node.state as string | undefined;
      await expect.poll(stateOf, { timeout: 15_000 }).toMatch(/^(DELIVERED|FAILED)$/);
      expect(await stateOf()).toBe('DELIVERED');
      expect((await own.stats('audit')).routes[AUDIT]!.statuses['409']).toBeGreaterThanOrEqual(1);
      expect(await auditEvents(own, id)).toHaveLength(1);
    });

    it('the primary fails: FAILED with its typed error; the same key again runs the write again', async () => {
      const id = stack.userId(232);
      await stack.faults('identity', { errorRate: 1, routes: [PATCH] });
      const input = { userId: id, name: 'Never', idempotencyKey: `fail-${name}` };
      const failed = (await stack.gql<AnyData>(UPDATE, { input })).body.data!.updateProfile;
      expect(failed).toMatchObject({ status: 'FAILED', user: null });
      expect(failed.deliveries[0]).toMatchObject({ target: 'IDENTITY', state: 'FAILED', error: { code: 'SOURCE_UNAVAILABLE' } });
      await stack.faults('identity', {});
      const retried = (await stack.gql<AnyData>(UPDATE, { input })).body.data!.updateProfile;
      expect(retried).toMatchObject({ status: 'COMPLETE', replayed: false, user: { name: 'Never' } });
      // The audit event of the two tries is one event: both carried the same derived key.
      await expect.poll(async () => (await auditEvents(stack, id)).length).toBe(1);
    });
  });
}

deliverySuite('deliveries in memory (no Redis)', () => ({}));

describeWithRedis('deliveries through bullmq on Redis', () => {
  const redis = new TestRedis();
  beforeAll(() => redis.start());
  afterAll(() => redis.stop());
  deliverySuite('bullmq', () => ({ redis: { url: redis.url } }));
});

describeWithRedis('a hung Redis (connections open, no answers) during a write', () => {
  const redis = new TestRedis();
  beforeAll(() => redis.start());
  afterAll(() => redis.stop());

  it('the write still answers, its delivery kept in memory and made once (before, it waited for Redis without end); listing deliveries is STORE_UNAVAILABLE with a warn line that says why', async () => {
    const stack = await stackWith({ redis: { url: redis.url, keyPrefix: 'gwhungwrite:' } });
    const id = stack.userId(240);
    const hang = new Redis(redis.url, { maxRetriesPerRequest: 0 });
    const sleeping = hang.call('DEBUG', 'SLEEP', '8').catch(() => undefined);
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    const res = await stack.gql<AnyData>(UPDATE, { input: { userId: id, nickname: 'while-redis-hangs' } });
    const tookMs = Date.now() - started;
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data!.updateProfile).toMatchObject({ status: 'COMPLETE', deliveries: [{ state: 'DELIVERED' }, { target: 'AUDIT', state: 'DELIVERED' }] });
    expect(tookMs).toBeLessThan(6000);
    expect(stack.logs.filter((l) => l.includes('Durable delivery queue unavailable'))).toHaveLength(1);
    // More writes while it hangs: five lines in full a window, then one summing up the rest (before, one line each).
    const more = await Promise.all(
      Array.from({ length: 7 }, (_, i) => stack.gql<AnyData>(UPDATE, { input: { userId: stack.userId(241 + i), nickname: `while-redis-hangs-${i}` } })),
    );
    expect(more.map((r) => r.body.data?.updateProfile?.status)).toEqual(Array(7).fill('COMPLETE'));
    expect(stack.logs.filter((l) => l.includes('Durable delivery queue unavailable'))).toHaveLength(5);
    // Listing deliveries needs Redis: a typed, retryable error naming it (it was INTERNAL_SERVER_ERROR, "Unexpected error.",
    // and a line at error level with a stack), and one warn line that says why.
    const listed = await stack.gql<AnyData>(DELIVERIES, {});
    expect(listed.body.errors!.map((e) => e.extensions)).toEqual([{ code: 'STORE_UNAVAILABLE', retryable: true }]);
    expect(listed.body.errors![0]!.message).toBe('The delivery log is kept in Redis, which is not answering; try again once it is back.');
    const lines = stack.logs.map((l) => JSON.parse(l) as AnyData);
    expect(lines.filter((l) => l.level === 50)).toEqual([]);
    expect(lines.filter((l) => l.level === 40 && String(l.msg).startsWith('The delivery log could not be read')).map((l) => l.err)).toEqual(['Command timed out']);
    await sleeping;
    hang.disconnect();
    await expect
      .poll(() => stack.logs.filter((l) => l.includes('more deliveries were kept in memory only')).map((l) => (JSON.parse(l) as AnyData).suppressed), { timeout: 11_000 })
      .toEqual([3]);
    // A queue command that went through once Redis woke leaves a second copy of the job: the audit key keeps it one event.
    await new Promise((r) => setTimeout(r, 1500));
    expect((await auditEvents(stack, id)).filter((e) => e.action === 'profile.update')).toHaveLength(1);
    expect((await writeCalls(stack)).patch).toBe(8);
  });
});
