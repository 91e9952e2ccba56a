import { randomBytes } from 'node:crypto';
import { createClient } from 'graphql-ws';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Dataset } from '../simulator/dataset.js';
import { startServerProcess, startUpstreamsProcess, stopAll, type Child } from './helpers/processes.js';
import { describeWithRedis, TestRedis } from './helpers/redis.js';

/**
 * Two server processes on one Redis, the vendors in a third, as deployed: a
 * `sendNotification` through instance A reaches a WebSocket subscriber on
 * instance B within 2 s (vendor → signed webhook into A → invalidation and
 * publish through Redis → B), and B's cached unread count is fresh.
 */
type AnyData = Record<string, any>;
const SECRET = randomBytes(32).toString('base64url');
const WEBHOOK_SECRET = `whsec_${randomBytes(24).toString('base64')}`;
const user = new Dataset().users[60]!.user_id;
/** Both instances share one prefix (one queue, one set of channels); a fresh one per run keeps runs apart. */
const KEY_PREFIX = `live${randomBytes(4).toString('hex')}:`;
let redis: TestRedis;
let env: Record<string, string>;
const instances: { process: Child; url: string }[] = [];

function startInstance(): Promise<{ process: Child; url: string }> {
  return startServerProcess({ ...env, AUTH_JWT_SECRET: SECRET, REDIS_URL: redis.url, REDIS_KEY_PREFIX: KEY_PREFIX, NOTIFICATIONS_WEBHOOK_SECRET: WEBHOOK_SECRET });
}

const token = (admin: boolean) =>
  new SignJWT(admin ? { scope: 'admin' } : {}).setProtectedHeader({ alg: 'HS256' }).setSubject(user).setExpirationTime('10m').sign(new TextEncoder().encode(SECRET));

async function gql(url: string, query: string, variables: Record<string, unknown> = {}): Promise<AnyData> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${await token(true)}` },
    body: JSON.stringify({ query, variables }),
  });
  return (await res.json()) as AnyData;
}

describeWithRedis('subscriptions across two server processes on one Redis', () => {
  beforeAll(async () => {
    redis = new TestRedis();
    await redis.start();
    ({ env } = await startUpstreamsProcess());
    instances.push(...(await Promise.all([startInstance(), startInstance()])));
    const hooked = await fetch(`${env.NOTIFICATIONS_URL}/__admin/webhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ url: instances[0]!.url.replace('/graphql', '/webhooks/notifications'), secret: WEBHOOK_SECRET, retryDelaysMs: [100, 200] }),
    });
    expect(hooked.status).toBe(200);
  }, 90_000);
  afterAll(async () => {
    await stopAll();
    await redis?.stop();
  });

  it('sendNotification through A reaches a subscriber on B within 2 s, and B’s unread count is fresh', async () => {
    const a = instances[0]!;
    const b = instances[1]!;
    const COUNT = `query($u: ID!) { user(id: $u) { unreadNotificationCount } }`;
    const before = (await gql(b.url, COUNT, { u: user })).data.user.unreadNotificationCount as number;
    const client = createClient({
      url: b.url.replace('http', 'ws'),
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      connectionParams: { authorization: `Bearer ${await token(false)}` },
    });
    try {
      const heard = new Promise<unknown>((resolve) => {
        const timer = setTimeout(() => resolve('nothing within 3 s'), 3000);
        client.subscribe(
          { query: `subscription($u: ID!) { notificationAdded(userId: $u) { title } }`, variables: { u: user } },
          { next: (v) => (clearTimeout(timer), resolve(v)), error: (e) => (clearTimeout(timer), resolve(e)), complete: () => undefined },
        );
      });
      await new Promise((r) => setTimeout(r, 300));
      const sentAt = performance.now();
      const sent = await gql(a.url, `mutation($u: ID!) { sendNotification(input: { userId: $u, title: "from A", body: "b", channel: IN_APP }) { status } }`, { u: user });
      expect(sent.data.sendNotification.status).toBe('COMPLETE');
      expect(await heard).toEqual({ data: { notificationAdded: { title: 'from A' } } });
      expect(performance.now() - sentAt).toBeLessThan(2000);
      expect((await gql(b.url, COUNT, { u: user })).data.user.unreadNotificationCount).toBe(before + 1);
    } finally {
      await client.dispose();
    }
  }, 30_000);
});
