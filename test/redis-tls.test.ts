import { readFileSync, rmSync } from 'node:fs';
import { Redis } from 'ioredis';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Dataset } from '../simulator/dataset.js';
import { startServerProcess, startUpstreamsProcess, stopAll } from './helpers/processes.js';
import { describeWithRedis, makeTestTls, TestRedis, TestSentinel } from './helpers/redis.js';

/**
 * REDIS_URL=rediss://…, as managed Redis with encryption in transit has it: every connection the server makes (the
 * main one, the invalidation subscriber, the live stream's reader and writer, the queues' and their workers') speaks
 * TLS, trusting the CA as Node trusts any (NODE_EXTRA_CA_CERTS). A Redis that speaks only TLS would refuse any that
 * did not.
 */
describeWithRedis('REDIS_URL=rediss:// (a Redis that speaks only TLS)', () => {
  const tls = makeTestTls();
  const redis = new TestRedis(tls);
  /** A sentinel that speaks only TLS too, watching `redis` (as TLS high availability has both: Bitnami's chart, for one). */
  const sentinel = new TestSentinel('gwtlsmaster', redis.port, undefined, tls);
  beforeAll(async () => {
    await redis.start();
    await sentinel.start();
  }, 30_000);
  afterAll(async () => {
    await stopAll();
    await sentinel.stop();
    await redis.stop();
    rmSync(tls.dir, { recursive: true, force: true });
  });

  it('the server connects, and a write queued for retry is delivered through the queue there', async () => {
    expect(redis.url).toMatch(/^rediss:\/\//);
    const vendors = await startUpstreamsProcess();
    const secret = 'tls-redis-test-secret-tls-redis-test-secret';
    const audit = vendors.env.AUDIT_URL!;
    await fetch(`${audit}/__admin/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ errorRate: 1, errorCount: 1 }) });
    const server = await startServerProcess({
      ...vendors.env,
      AUTH_JWT_SECRET: secret,
      REDIS_URL: redis.url,
      NODE_EXTRA_CA_CERTS: tls.ca,
      AUDIT_RETRY_MAX_ATTEMPTS: '1',
      DELIVERY_BACKOFF_MS: '100',
    });
    const token = await new SignJWT({ scope: 'admin' }).setProtectedHeader({ alg: 'HS256' }).setSubject('ops').setExpirationTime('5m').sign(new TextEncoder().encode(secret));
    const userId = new Dataset().users[870]!.user_id;
    const res = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({
        query: `mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { status deliveries { target state } } }`,
        variables: { input: { userId, nickname: 'over-tls' } },
      }),
    });
    const payload = ((await res.json()) as { data: { updateProfile: { deliveries: { target: string; state: string }[] } } }).data.updateProfile;
    expect(payload.deliveries.find((d) => d.target === 'AUDIT')!.state).toBe('QUEUED');
    // Retried by the queue's worker, over TLS: the audit event arrives.
    await expect
      .poll(
        async () =>
          ((await (await fetch(`${audit}/v1/events?target=${encodeURIComponent(userId)}`, { headers: { 'x-api-key': vendors.env.AUDIT_API_KEY! } })).json()) as { data: unknown[] })
            .data.length,
        { timeout: 10_000 },
      )
      .toBe(1);
    // Through the durable queue, not kept in memory for want of it.
    expect(server.process.output()).not.toMatch(/"level":50|kept in memory/);
  });

  it('REDIS_SENTINELS=rediss://…: the sentinels and the master they name are both reached over TLS', async () => {
    const vendors = await startUpstreamsProcess();
    const secret = 'tls-sentinel-test-secret-tls-sentinel-test-secret';
    const server = await startServerProcess({
      ...vendors.env,
      AUTH_JWT_SECRET: secret,
      REDIS_SENTINELS: `rediss://127.0.0.1:${sentinel.port}`,
      REDIS_SENTINEL_MASTER: 'gwtlsmaster',
      REDIS_KEY_PREFIX: 'gwtlssentinel:',
      NODE_EXTRA_CA_CERTS: tls.ca,
    });
    // Connected through the sentinel, to the master it named; then a profile read is kept in L2 there.
    await server.process.waitFor(/"msg":"Redis connected"/, 10_000);
    expect(server.process.output()).toContain(`"redis":"master gwtlsmaster of the sentinels at rediss://127.0.0.1:${sentinel.port}"`);
    const token = await new SignJWT({ scope: 'admin' }).setProtectedHeader({ alg: 'HS256' }).setSubject('ops').setExpirationTime('5m').sign(new TextEncoder().encode(secret));
    const userId = new Dataset().users[871]!.user_id;
    const res = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: `query($id: ID!) { user(id: $id) { id name } }`, variables: { id: userId } }),
    });
    expect(((await res.json()) as { errors?: unknown }).errors).toBeUndefined();
    const master = new Redis(redis.port, { tls: { ca: readFileSync(tls.ca) } });
    try {
      await expect.poll(async () => (await master.keys(`gwtlssentinel:c:identity.user*${userId}*`)).length, { timeout: 3000 }).toBe(1);
    } finally {
      master.disconnect();
    }
    expect(server.process.output()).not.toMatch(/"level":50|not reachable|unreachable/);
  });
});
