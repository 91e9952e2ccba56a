import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Dataset } from '../simulator/dataset.js';
import { RedisTier } from '../src/cache/redis-tier.js';
import { createLogger } from '../src/logger.js';
import { newRedisClient, RedisConnection } from '../src/redis.js';
import { RedisTokenLease } from '../src/resilience/redis-token-lease.js';
import type { StatsSnapshot } from '../simulator/index.js';
import { startServerProcess, startUpstreamsProcess, stopAll, type Child } from './helpers/processes.js';
import { describeWithRedis, TestRedisCluster } from './helpers/redis.js';
import { newerThan, watchCommands } from './helpers/redis-commands.js';
import { expectTierWrites } from './helpers/tier-writes.js';

/**
 * REDIS_CLUSTER_NODES, as deployed: a three-master Redis Cluster of
 * redis-server processes, two server processes on it, the vendors in a third.
 * Everything Redis does here works on the cluster (learned rate limits shared,
 * L2 shared, the delivery queue, pub/sub); with a master stopped the servers
 * degrade (L1, the vendors) without errors or a crash, and they use the
 * cluster again once it is back.
 */
type AnyData = Record<string, any>;
const SECRET = randomBytes(32).toString('base64url');
const WEBHOOK_SECRET = `whsec_${randomBytes(24).toString('base64')}`;
const users = new Dataset().users.map((u) => u.user_id);
let cluster: TestRedisCluster;
let commands: Awaited<ReturnType<typeof watchCommands>>;
let vendors: { child: Child; env: Record<string, string> };
const instances: { process: Child; url: string }[] = [];

const token = () => new SignJWT({ scope: 'admin' }).setProtectedHeader({ alg: 'HS256' }).setSubject(users[0]!).setExpirationTime('10m').sign(new TextEncoder().encode(SECRET));

async function gql(url: string, query: string, variables: Record<string, unknown> = {}): Promise<AnyData> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${await token()}` },
    body: JSON.stringify({ query, variables }),
  });
  return (await res.json()) as AnyData;
}

async function stats(source: 'IDENTITY' | 'NOTIFICATIONS' | 'AUDIT'): Promise<StatsSnapshot> {
  return (await (await fetch(`${vendors.env[`${source}_URL`]}/__admin/stats`)).json()) as StatsSnapshot;
}

const searches = async () => (await stats('IDENTITY')).routes['GET /api/v2/users']?.calls ?? 0;
const NAME = `query($u: ID!) { user(id: $u) { name } }`;

describeWithRedis('on a Redis Cluster (three masters)', () => {
  beforeAll(async () => {
    cluster = new TestRedisCluster();
    await cluster.start();
    commands = await watchCommands(cluster.ports);
    vendors = await startUpstreamsProcess();
    const prefix = `rc${randomBytes(3).toString('hex')}:`;
    for (let i = 0; i < 2; i++) {
      const instance = await startServerProcess({
        ...vendors.env,
        AUTH_JWT_SECRET: SECRET,
        REDIS_CLUSTER_NODES: cluster.nodes,
        REDIS_KEY_PREFIX: prefix,
        NOTIFICATIONS_WEBHOOK_SECRET: WEBHOOK_SECRET,
        // Hash mode: a record the cache fetches has its hash swapped in Redis (a script), no extra vendor call.
        IDENTITY_CHANGE_FEED: 'hash',
        DELIVERY_BACKOFF_MS: '200',
      });
      await instance.process.waitFor(/Redis connected/, 20_000);
      instances.push(instance);
    }
  }, 90_000);
  afterAll(async () => {
    await stopAll();
    await cluster?.stop();
  });

  it('entries cached by one instance are L2 hits for the other (keys of several slots read together)', async () => {
    const [a, b] = instances as unknown as [{ url: string }, { url: string }];
    // Six users in one query: one L2 read of six keys, which fall in different slots (each user is its own hash tag).
    const ids = users.slice(300, 306);
    const LIST = `query($ids: [ID!]!) { users(ids: $ids) { name } }`;
    const before = await searches();
    const fromA = (await gql(a.url, LIST, { ids })).data.users;
    expect(await searches()).toBe(before + 1);
    expect((await gql(b.url, LIST, { ids })).data.users).toEqual(fromA);
    expect(await searches()).toBe(before + 1);
  });

  it('the learned rate limit is shared: a 429 seen by one instance lowers the other’s rate', async () => {
    const [a, b] = instances as unknown as [{ url: string }, { url: string }];
    const rate = async (url: string) => ((await gql(url, `{ sources { name rateLimitPerSec rateLimiter } }`)).data.sources as AnyData[]).find((s) => s.name === 'notifications')!;
    expect((await rate(b.url)).rateLimiter).toBe('SHARED');
    expect((await rate(b.url)).rateLimitPerSec).toBe(80);
    await fetch(`${vendors.env.NOTIFICATIONS_URL}/__admin/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ errorRate: 1, errorStatus: 429 }),
    });
    await gql(a.url, `query($u: ID!) { user(id: $u) { unreadNotificationCount } }`, { u: users[301] });
    await fetch(`${vendors.env.NOTIFICATIONS_URL}/__admin/faults`, { method: 'DELETE' });
    // B learns the shared rate on its next call to that vendor (without Redis it would still send at 80/s).
    await gql(b.url, `query($u: ID!) { user(id: $u) { unreadNotificationCount } }`, { u: users[304] });
    expect((await rate(b.url)).rateLimitPerSec).toBeLessThan(80);
  });

  it('a write queued on one instance is delivered once', async () => {
    const [a] = instances as unknown as [{ url: string }];
    await fetch(`${vendors.env.AUDIT_URL}/__admin/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ errorRate: 1, errorStatus: 503 }),
    });
    const before = (await stats('AUDIT')).routes['POST /v1/events']?.statuses['202'] ?? 0;
    const sent = await gql(a.url, `mutation($u: ID!) { sendNotification(input: { userId: $u, title: "queued on a cluster", body: "b", channel: PUSH }) { status } }`, {
      u: users[302],
    });
    expect(sent.data.sendNotification.status).toBe('PARTIAL');
    await fetch(`${vendors.env.AUDIT_URL}/__admin/faults`, { method: 'DELETE' });
    let delivered = 0;
    for (let i = 0; i < 100 && delivered === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      delivered = ((await stats('AUDIT')).routes['POST /v1/events']?.statuses['202'] ?? 0) - before;
    }
    await new Promise((r) => setTimeout(r, 1500));
    expect(((await stats('AUDIT')).routes['POST /v1/events']?.statuses['202'] ?? 0) - before).toBe(1);
  }, 30_000);

  it('a vendor event delivered to one instance reaches a subscriber on the other', async () => {
    const [a, b] = instances as unknown as [{ url: string }, { url: string }];
    await fetch(`${vendors.env.NOTIFICATIONS_URL}/__admin/webhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ url: a.url.replace('/graphql', '/webhooks/notifications'), secret: WEBHOOK_SECRET, retryDelaysMs: [200] }),
    });
    const ac = new AbortController();
    const res = await fetch(b.url, {
      method: 'POST',
      signal: ac.signal,
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${await token()}` },
      body: JSON.stringify({ query: `subscription($u: ID!) { notificationAdded(userId: $u) { title } }`, variables: { u: users[303] } }),
    });
    const reader = res.body!.getReader();
    let text = '';
    void (async () => {
      for (;;) {
        const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
        if (done) return;
        text += new TextDecoder().decode(value);
      }
    })();
    await new Promise((r) => setTimeout(r, 300));
    await gql(a.url, `mutation($u: ID!) { sendNotification(input: { userId: $u, title: "across the cluster", body: "b", channel: PUSH }) { status } }`, { u: users[303] });
    for (let i = 0; i < 40 && !text.includes('across the cluster'); i++) await new Promise((r) => setTimeout(r, 50));
    ac.abort();
    expect(text).toContain('across the cluster');
  });

  it('a Lua command first used in the same tick as another command to its node answers (the cluster client auto-pipelines)', async () => {
    const client = newRedisClient({ url: '', clusterNodes: cluster.nodes.split(',').map((n) => ({ host: '127.0.0.1', port: Number(n.split(':')[1]) })) });
    try {
      await client.get('{first-use}:warm');
      // One hash tag: both commands go to one node, in the one pipeline the first of them opens.
      const read = client.get('{first-use}:other');
      const lease = new RedisTokenLease(client, '{first-use}:lease', 100, 10, 5, 60_000);
      expect(await Promise.all([read, lease.take()])).toEqual([null, 0]);
    } finally {
      client.disconnect();
    }
  });

  it("L2 writes on the cluster keep each group's index as long as its longest entry (no PEXPIRE GT or NX: Redis 7.0's)", async () => {
    const nodes = cluster.nodes.split(',').map((n) => ({ host: '127.0.0.1', port: Number(n.split(':')[1]) }));
    const connection = new RedisConnection({ url: '', clusterNodes: nodes, keyPrefix: `tier${randomBytes(3).toString('hex')}:` }, createLogger({ level: 'silent' }));
    try {
      await expect.poll(() => connection.available).toBe(true);
      // Writes of three groups (three slots) in one tick: each write's commands go one by one, pipelined per node.
      await expectTierWrites(new RedisTier(connection, 1000, createLogger({ level: 'silent' })), connection.client);
    } finally {
      await connection.close();
    }
  });

  it('nothing above made Redis run a command, or an option, newer than Redis 6.0 (managed Redis still runs 6.x)', async () => {
    const calls = await commands.stop();
    expect(calls.length).toBeGreaterThan(100);
    // What the servers ran: L2 reads and writes, hashes swapped, rate limits, the delivery queue, live events.
    const ran = new Set(calls.map(([c]) => c!.toLowerCase()));
    for (const command of ['set', 'sadd', 'pexpire', 'evalsha', 'hset', 'xadd', 'publish', 'bzpopmin']) expect(ran).toContain(command);
    expect(await newerThan(cluster.ports[0]!, '6.0.0', calls)).toEqual([]);
  });

  it('a master stopped: no errors for what the vendors can give, no crash; back, the cluster is used again', async () => {
    const [a, b] = instances as [{ process: Child; url: string }, { process: Child; url: string }];
    await cluster.stopNode(1);
    // Fresh users (their keys fall on every master, the stopped one included) and cached ones, on both instances.
    for (let i = 0; i < 12; i++) {
      for (const instance of [a, b]) {
        const body = await gql(instance.url, NAME, { u: users[400 + i] });
        expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
        expect(body.data.user.name).toEqual(expect.any(String));
      }
    }
    expect(a.process.child.exitCode).toBeNull();
    expect(b.process.child.exitCode).toBeNull();

    await cluster.restart(1);
    await cluster.waitUntilOk();
    // Back: an entry cached by one instance is again an L2 hit for the other (any user's key may be on the restarted master).
    let shared = 0;
    for (let i = 0; i < 20 && shared < 3; i++) {
      const before = await searches();
      await gql(a.url, NAME, { u: users[500 + i] });
      const afterA = await searches();
      await gql(b.url, NAME, { u: users[500 + i] });
      if (afterA === before + 1 && (await searches()) === afterA) shared++;
      else await new Promise((r) => setTimeout(r, 300));
    }
    expect(shared).toBe(3);
  }, 60_000);
});
