import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { Cluster } from 'ioredis';
import { SignJWT } from 'jose';
import { Dataset } from '../simulator/dataset.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { RedisConnection } from '../src/redis.js';
import { loggedLines } from './helpers/log-lines.js';
import { startServerProcess, startUpstreamsProcess, stopAll } from './helpers/processes.js';
import { describeWithRedis, makeTestTls, TestRedisCluster } from './helpers/redis.js';
import { stackPool } from './helpers/stack.js';

/**
 * A Redis Cluster that asks for a password, as managed ones do (ElastiCache's AUTH token, Azure's access key):
 * REDIS_CLUSTER_NODES took host:port only, so such a cluster could not be used at all. A seed may now be a
 * redis:// or rediss:// URL with a user and password, given once for every node, discovered ones included.
 */
type AnyData = Record<string, any>;
const PASSWORD = 'cluster-p@ss:word';
const users = new Dataset().users.map((u) => u.user_id);

describeWithRedis('a Redis Cluster that asks for a password', () => {
  const cluster = new TestRedisCluster({ password: PASSWORD });
  let admin: Cluster;
  beforeAll(async () => {
    await cluster.start();
    admin = new Cluster([{ host: '127.0.0.1', port: cluster.ports[0]! }], { redisOptions: { password: PASSWORD } });
  }, 60_000);
  afterAll(async () => {
    admin?.disconnect();
    await cluster.stop();
  });

  it('REDIS_CLUSTER_NODES with the password on the first seed: every node is reached with it; the log shows it hidden', async () => {
    const settings = loadConfig({ REDIS_CLUSTER_NODES: cluster.nodes, REDIS_KEY_PREFIX: 'gwauth1:' }).redis!;
    expect(settings.clusterNodes).toHaveLength(3);
    const { logger, lines } = loggedLines('info');
    const connection = new RedisConnection(settings, logger);
    try {
      await expect.poll(() => connection.available, { timeout: 5000 }).toBe(true);
      // Keys in many slots, so on every master (each one's own AUTH).
      const keys = Array.from({ length: 30 }, (_, i) => connection.key(`k${i}`));
      await Promise.all(keys.map((k) => connection.client.set(k, 'v')));
      expect(await Promise.all(keys.map((k) => admin.get(k)))).toEqual(keys.map(() => 'v'));
      const connected = lines.find((l) => l.msg === 'Redis connected')!;
      expect(connected.redis).toBe(`redis://:***@127.0.0.1:${cluster.ports[0]}`);
      expect(JSON.stringify(lines)).not.toContain('p@ss');
    } finally {
      await connection.close();
    }
  });

  it('the whole server on it: L2 entries and a queued delivery retried by its worker', async () => {
    const settings = loadConfig({ REDIS_CLUSTER_NODES: cluster.nodes }).redis!;
    const stack = await stackPool((o) => ({ ...o, cache: { enabled: true }, writes: { deliveryBackoffMs: 100 }, tuning: { audit: { retryMaxAttempts: 1 } } }))({
      redis: { ...settings, keyPrefix: 'gwauth2:' },
    });
    const id = stack.userId(610);
    expect((await stack.gql<AnyData>(`query($id: ID!) { user(id: $id) { id name } }`, { id })).body.errors).toBeUndefined();
    await expect.poll(() => l2Keys(id), { timeout: 3000 }).toBeGreaterThan(0);
    await stack.faults('audit', { errorRate: 1, errorCount: 1 });
    const res = await stack.gql<AnyData>(`mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { deliveries { id target state } } }`, {
      input: { userId: id, nickname: 'on-an-auth-cluster' },
    });
    const audit = (res.body.data!.updateProfile.deliveries as AnyData[]).find((d) => d.target === 'AUDIT')!;
    expect(audit.state).toBe('QUEUED');
    await expect.poll(async () => admin.hget(`{gwauth2:bull}:deliveries:${audit.id}`, 'finishedOn'), { timeout: 10_000 }).not.toBeNull();
    expect(stack.logs.map((l) => JSON.parse(l) as AnyData).filter((l) => l.level >= 40 && /Redis|queue/.test(String(l.msg)))).toEqual([]);

    async function l2Keys(user: string): Promise<number> {
      let n = 0;
      for (const node of admin.nodes('master')) n += (await node.keys(`gwauth2:c:*${user}*`)).length;
      return n;
    }
  });

  it('a master that refuses writes (full) is told as one "Redis refuses writes" line, as one Redis is', async () => {
    const { logger, lines } = loggedLines('info');
    const connection = new RedisConnection(loadConfig({ REDIS_CLUSTER_NODES: cluster.nodes, REDIS_KEY_PREFIX: 'gwauth4:' }).redis!, logger);
    const full = admin.nodes('master')[0]!;
    try {
      await expect.poll(() => connection.available, { timeout: 5000 }).toBe(true);
      await full.config('SET', 'maxmemory', '1');
      // Keys in many slots: those on the full master are refused, the rest written.
      const results = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => connection.client.set(connection.key(`k${i}`), 'v')));
      expect(results.filter((r) => r.status === 'rejected').length).toBeGreaterThan(0);
      expect(results.filter((r) => r.status === 'fulfilled').length).toBeGreaterThan(0);
      const refused = lines.filter((l) => l.msg.startsWith('Redis refuses writes'));
      expect(refused).toHaveLength(1);
      expect(refused[0]).toMatchObject({ level: 40, err: expect.stringMatching(/^OOM/) });
      expect(connection.state).toBe('refusing writes');
    } finally {
      await full.config('SET', 'maxmemory', '0');
      await connection.close();
    }
  });

  it('the wrong password: one line at error level naming the credentials, not "not reachable"', async () => {
    const wrong = cluster.nodes.replace(encodeURIComponent(PASSWORD), 'wrong');
    const { logger, lines } = loggedLines('info');
    const connection = new RedisConnection({ ...loadConfig({ REDIS_CLUSTER_NODES: wrong }).redis!, keyPrefix: 'gwauth3:' }, logger);
    try {
      await new Promise((r) => setTimeout(r, 4000));
      expect(lines.filter((l) => l.level >= 40).map((l) => [l.level, l.msg.split(':')[0]])).toEqual([[50, 'Redis refuses our credentials']]);
      expect(connection.state).toBe('credentials refused');
    } finally {
      await connection.close();
    }
  });
});

describeWithRedis('a Redis Cluster that speaks only TLS and asks for a password', () => {
  const tls = makeTestTls();
  const cluster = new TestRedisCluster({ password: PASSWORD, tls });
  beforeAll(() => cluster.start(), 60_000);
  afterAll(async () => {
    await stopAll();
    await cluster.stop();
    rmSync(tls.dir, { recursive: true, force: true });
  });

  it('rediss:// on one seed: the server, trusting the CA as Node does (NODE_EXTRA_CA_CERTS), keeps L2 entries on every master', async () => {
    expect(cluster.nodes).toMatch(/^rediss:\/\/:[^@]+@127\.0\.0\.1:\d+,127\.0\.0\.1:\d+,127\.0\.0\.1:\d+$/);
    const vendors = await startUpstreamsProcess();
    const server = await startServerProcess({
      ...vendors.env,
      AUTH_JWT_SECRET: 'tls-cluster-test-secret-tls-cluster-test-secret',
      REDIS_CLUSTER_NODES: cluster.nodes,
      REDIS_KEY_PREFIX: 'gwtls:',
      NODE_EXTRA_CA_CERTS: tls.ca,
    });
    await server.process.waitFor(/Redis connected/, 20_000);
    const token = await new SignJWT({ scope: 'admin' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('ops')
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode('tls-cluster-test-secret-tls-cluster-test-secret'));
    const ids = users.slice(620, 632);
    const res = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: `query($ids: [ID!]!) { users(ids: $ids) { name } }`, variables: { ids } }),
    });
    expect(((await res.json()) as AnyData).errors).toBeUndefined();
    // Read back over TLS with redis-cli: twelve users' entries, spread over the masters.
    const keysOn = (port: number) =>
      Number(execFileSync('redis-cli', ['--tls', '--cacert', tls.ca, '-a', PASSWORD, '--no-auth-warning', '-p', String(port), 'dbsize'], { encoding: 'utf8' }).trim());
    await expect.poll(() => cluster.ports.filter((port) => keysOn(port) > 0).length, { timeout: 3000 }).toBe(3);
    expect(server.process.output()).not.toContain(PASSWORD);
  });
});
