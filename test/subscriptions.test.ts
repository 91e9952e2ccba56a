import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { codeOf, take, wsClient } from './helpers/live-client.js';
import { stackPool, type Stack } from './helpers/stack.js';

/**
 * Subscriptions, end to end: the simulated vendor's webhook (signed, into the
 * server) → invalidation → published → a subscriber over SSE or WebSocket,
 * authorized at subscribe time like a query, bounded per caller. Across
 * instances: test/subscriptions-processes.test.ts.
 */
type AnyData = Record<string, any>;
const SECRET = `whsec_${randomBytes(24).toString('base64')}`;
const stackWith = stackPool((o) => ({ webhookSecrets: { notifications: SECRET }, cache: { enabled: true }, ...o }));

/** Points the simulated notifications vendor's webhooks at a server. */
async function hookVendorTo(stack: Stack): Promise<void> {
  const res = await fetch(`${stack.upstreams.notifications.url}/__admin/webhook`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ url: stack.url.replace('/graphql', '/webhooks/notifications'), secret: SECRET, retryDelaysMs: [100, 200] }),
  });
  expect(res.status).toBe(200);
}

const SEND = `mutation($u: ID!, $t: String!) { sendNotification(input: { userId: $u, title: $t, body: "b", channel: PUSH }) { status } }`;

describe('subscriptions', () => {
  it('SSE: unreadCount follows the vendor, fresh after each event (a notification sent, through the vendor’s webhook)', async () => {
    const stack = await stackWith();
    await hookVendorTo(stack);
    const user = stack.userId(50);
    const before = (await stack.gql<AnyData>(`query($u: ID!) { user(id: $u) { unreadNotificationCount } }`, { u: user })).body.data!.user.unreadNotificationCount as number;
    const ac = new AbortController();
    const res = await fetch(stack.url, {
      method: 'POST',
      signal: ac.signal,
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${await stack.token({ sub: user, admin: false })}` },
      body: JSON.stringify({ query: `subscription($u: ID!) { unreadCount(userId: $u) }`, variables: { u: user } }),
    });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    await new Promise((r) => setTimeout(r, 100));
    expect((await stack.gql<AnyData>(SEND, { u: user, t: 'over SSE' })).body.data!.sendNotification.status).toBe('COMPLETE');
    let text = '';
    const until = Date.now() + 3000;
    while (Date.now() < until && !text.includes('unreadCount')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    ac.abort();
    expect(text).toContain(`"unreadCount":${before + 1}`);
  });

  it('WebSocket: the token in connectionParams; a user hears their own, not another’s; no token is UNAUTHENTICATED', async () => {
    const stack = await stackWith();
    await hookVendorTo(stack);
    const user = stack.userId(51);
    const mine = wsClient(stack, await stack.token({ sub: user, admin: false }));
    const QUERY = `subscription($u: ID!) { notificationAdded(userId: $u) { title channel read } }`;
    try {
      const own = take(mine, QUERY, { u: user });
      const other = take(mine, QUERY, { u: stack.userId(52) });
      expect(codeOf(await other.results)).toBe('FORBIDDEN');
      await new Promise((r) => setTimeout(r, 150));
      await stack.gql(SEND, { u: user, t: 'over WebSocket' });
      expect(await own.results).toEqual([{ data: { notificationAdded: { title: 'over WebSocket', channel: 'PUSH', read: false } } }]);
    } finally {
      await mine.dispose();
    }
    const anonymous = wsClient(stack, null);
    try {
      expect(codeOf(await take(anonymous, QUERY, { u: user }).results)).toBe('UNAUTHENTICATED');
    } finally {
      await anonymous.dispose();
    }
  });

  it('WebSocket: variables nested 6,000 deep are BAD_REQUEST for that operation; the socket stays open for the next', async () => {
    const stack = await stackWith();
    const user = stack.userId(53);
    const deep = `${'{"a":'.repeat(6000)}1${'}'.repeat(6000)}`;
    // Raw frames: graphql-ws's own client cannot stringify such variables.
    const ws = new WebSocket(stack.url.replace('http', 'ws'), 'graphql-transport-ws');
    const frames: AnyData[] = [];
    let closed: number | null = null;
    ws.on('message', (m) => frames.push(JSON.parse(String(m)) as AnyData));
    ws.on('close', (code) => (closed = code));
    try {
      await new Promise((r) => ws.once('open', r));
      ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${await stack.token({ sub: user, admin: false })}` } }));
      await expect.poll(() => frames.some((f) => f.type === 'connection_ack')).toBe(true);
      ws.send(`{"id":"deep","type":"subscribe","payload":{"query":"query($u: ID!) { user(id: $u) { id } }","variables":{"u":"${user}","x":${deep}}}}`);
      ws.send(JSON.stringify({ id: 'next', type: 'subscribe', payload: { query: 'query($u: ID!) { user(id: $u) { id } }', variables: { u: user } } }));
      await expect.poll(() => frames.some((f) => f.id === 'next' && f.type === 'complete')).toBe(true);
      // The response cache's key threw, and graphql-ws closed the socket (4500) with the RangeError's message.
      expect(closed).toBeNull();
      expect(frames.find((f) => f.id === 'deep')).toMatchObject({ type: 'error', payload: [{ extensions: { code: 'BAD_REQUEST' } }] });
      expect(frames.find((f) => f.id === 'next' && f.type === 'next')!.payload).toEqual({ data: { user: { id: user } } });
    } finally {
      ws.close();
    }
  });

  it('at most SUBSCRIPTIONS_PER_CALLER at once per caller; a closed one frees its place', async () => {
    const stack = await stackWith({ ops: (o) => ({ ...o, callerRateLimit: { perSec: 100_000, burst: 100_000 }, subscriptionsPerCaller: 2 }) });
    const user = stack.userId(53);
    const client = wsClient(stack, await stack.token({ sub: user, admin: false }));
    const QUERY = `subscription($u: ID!) { unreadCount(userId: $u) }`;
    try {
      const first = take(client, QUERY, { u: user }, 1, 400);
      const second = take(client, QUERY, { u: user }, 1, 400);
      await new Promise((r) => setTimeout(r, 150));
      expect(codeOf(await take(client, QUERY, { u: user }).results)).toBe('RATE_LIMITED');
      first.stop();
      await new Promise((r) => setTimeout(r, 150));
      const again = take(client, QUERY, { u: user }, 1, 300);
      expect(await again.results).toEqual([]);
      second.stop();
      again.stop();
    } finally {
      await client.dispose();
    }
  });
});
