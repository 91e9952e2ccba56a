import { afterAll, beforeAll, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { Dataset } from '../simulator/dataset.js';
import { runScript, startUpstreamsProcess, stopAll, type Child } from './helpers/processes.js';
import { describeWithRedis, TestRedis } from './helpers/redis.js';

/**
 * Nothing lost: the audit upstream is down, the write answers PARTIAL with the
 * audit QUEUED, the server is SIGKILLed, started again, the audit upstream
 * comes back — and the event arrives, exactly once. Everything as deployed:
 * the vendors in their own process, the server a child process, a real Redis.
 */
type AnyData = Record<string, any>;

const SECRET = 'durability-test-secret-durability-test-secret';
const users = new Dataset().users;
let redis: TestRedis;
let env: Record<string, string>;

async function startServer(): Promise<{ child: Child; url: string }> {
  const child = runScript('src/main.ts', {
    ...env,
    PORT: '0',
    LOG_LEVEL: 'info',
    AUTH_JWT_SECRET: SECRET,
    REDIS_URL: redis.url,
    REDIS_KEY_PREFIX: 'durable:',
    REQUEST_DEADLINE_MS: '3000',
    AUDIT_RETRY_MAX_ATTEMPTS: '1',
    DELIVERY_BACKOFF_MS: '200',
    DELIVERY_STALLED_AFTER_MS: '2000',
  });
  const [, url] = await child.waitFor(/GraphQL endpoint: (\S+)/, 60_000);
  await child.waitFor(/Redis connected/, 30_000);
  return { child, url: url! };
}

async function gql(url: string, query: string, variables: Record<string, unknown>): Promise<AnyData> {
  const token = await new SignJWT({ scope: 'admin' }).setProtectedHeader({ alg: 'HS256' }).setSubject('ops').setExpirationTime('10m').sign(new TextEncoder().encode(SECRET));
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ query, variables }) });
  return (await res.json()) as AnyData;
}

async function auditAdmin(method: string, path: string, body?: unknown): Promise<AnyData> {
  const res = await fetch(`${env.AUDIT_URL}${path}`, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status}`);
  return (await res.json()) as AnyData;
}

async function auditEventsFor(target: string): Promise<AnyData[]> {
  const res = await fetch(`${env.AUDIT_URL}/v1/events?target=${encodeURIComponent(target)}`, { headers: { 'x-api-key': env.AUDIT_API_KEY! } });
  return ((await res.json()) as { data: AnyData[] }).data;
}

describeWithRedis('durable delivery across a crash', () => {
  beforeAll(async () => {
    redis = new TestRedis();
    await redis.start();
    ({ env } = await startUpstreamsProcess());
  }, 90_000);

  afterAll(async () => {
    await stopAll();
    await redis?.stop();
  });

  it('audit down → PARTIAL/QUEUED → SIGKILL → restart → audit back → the event arrives exactly once', async () => {
    const userId = users[300]!.user_id;
    await auditAdmin('POST', '/__admin/faults', { errorRate: 1, errorStatus: 503, routes: ['POST /v1/events'] });

    const first = await startServer();
    const res = await gql(
      first.url,
      `mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { status deliveries { id target state attempts error { code } } user { name } } }`,
      {
        input: { userId, name: 'Survives A Crash', idempotencyKey: 'crash-1' },
      },
    );
    expect(res.errors).toBeUndefined();
    const payload = res.data.updateProfile;
    expect(payload.status).toBe('PARTIAL');
    expect(payload.user.name).toBe('Survives A Crash');
    const audit = payload.deliveries.find((d: AnyData) => d.target === 'AUDIT');
    expect(audit).toMatchObject({ state: 'QUEUED', attempts: 1, error: { code: 'SOURCE_UNAVAILABLE' } });

    expect(await first.child.stop('SIGKILL')).toBeNull(); // killed, no exit code: nothing ran on the way out
    expect(await auditEventsFor(userId)).toEqual([]);

    const second = await startServer();
    await auditAdmin('DELETE', '/__admin/faults');
    await expect.poll(async () => (await auditEventsFor(userId)).length, { timeout: 30_000, interval: 250 }).toBe(1);
    // And it stays one: no late duplicate from a retry or from the dead process's attempt.
    await new Promise((r) => setTimeout(r, 2000));
    const events = await auditEventsFor(userId);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ action: 'profile.update', target: userId, details: { fields: ['name'], idempotencyKey: 'crash-1' } });

    const listed = await gql(second.url, `query { deliveries(state: DELIVERED) { edges { node { id state } } } }`, {});
    expect(listed.data.deliveries.edges.map((e: AnyData) => e.node.id)).toContain(audit.id);
    // The same mutation again, on the new process, is the stored first answer: no second PATCH, no second event.
    const replay = await gql(second.url, `mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { status replayed } }`, {
      input: { userId, name: 'Survives A Crash', idempotencyKey: 'crash-1' },
    });
    expect(replay.data.updateProfile).toEqual({ status: 'PARTIAL', replayed: true });
    expect(await auditEventsFor(userId)).toHaveLength(1);
  }, 120_000);
});
