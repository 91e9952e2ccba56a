import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Dataset } from '../simulator/dataset.js';
import type { StatsSnapshot } from '../simulator/index.js';
import { startServerProcess, startUpstreamsProcess, stopAll, type Child } from './helpers/processes.js';
import { describeWithRedis, TestRedis } from './helpers/redis.js';

/**
 * Two server processes share one notifications budget through Redis. The
 * vendor allows 20 requests a second; the servers keep their default budget
 * (80/s): what keeps the pair near 20 is what they learn from the vendor's
 * 429s and Retry-After, shared through Redis (one pause, one learned rate).
 */
type AnyData = Record<string, any>;
const SECRET = randomBytes(32).toString('base64url');
/** Both instances use one prefix (so one bucket); a fresh one per run keeps runs apart. */
const KEY_PREFIX = `test-${randomBytes(4).toString('hex')}:`;

let redis: TestRedis;
/**
 * The vendors run in their own process (`npm run upstreams`), as real ones would:
 * inside this busy test process their arrival timestamps would bunch whenever
 * its event loop stalled, and the histogram would measure the test, not us.
 * This is what the servers are told to find them.
 */
let env: Record<string, string>;
/** The same seeded users the upstream process serves. */
const users = new Dataset().users;
const instances: { process: Child; url: string }[] = [];
let token: string;

function startInstance(): Promise<{ process: Child; url: string }> {
  return startServerProcess({
    ...env,
    AUTH_JWT_SECRET: SECRET,
    REDIS_URL: redis.url,
    REDIS_KEY_PREFIX: KEY_PREFIX,
    CALLER_RATE_LIMIT_PER_SEC: '100000',
    CALLER_RATE_LIMIT_BURST: '100000',
    IDENTITY_RATE_LIMIT_PER_SEC: '1000',
    IDENTITY_RATE_LIMIT_BURST: '100',
  });
}

async function gql(url: string, query: string, variables: Record<string, unknown> = {}): Promise<{ status: number; body: AnyData }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ query, variables }) });
  return { status: res.status, body: (await res.json()) as AnyData };
}

/** The notifications upstream's admin endpoint. */
async function admin(method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${env.NOTIFICATIONS_URL}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status}`);
  return res.json();
}

const limiterModes = async () =>
  Promise.all(
    instances.map(async (i) => ((await gql(i.url, `{ sources { name rateLimiter } }`)).body.data.sources as AnyData[]).find((s) => s.name === 'notifications')!.rateLimiter),
  );

describeWithRedis('rate limits shared across instances through Redis', () => {
  beforeAll(async () => {
    redis = new TestRedis();
    await redis.start();
    ({ env } = await startUpstreamsProcess());
    await admin('POST', '/__admin/faults', { rateLimitPerSec: 20 });
    instances.push(...(await Promise.all([startInstance(), startInstance()])));
    token = await new SignJWT({ scope: 'admin' }).setProtectedHeader({ alg: 'HS256' }).setSubject('test').setExpirationTime('10m').sign(new TextEncoder().encode(SECRET));
  }, 60_000);

  afterAll(async () => {
    await stopAll();
    await redis?.stop();
  });

  it('300 queries over 5 s across two instances at the default budget: few 429s, none before its Retry-After, the vendor used', async () => {
    expect(await limiterModes()).toEqual(['SHARED', 'SHARED']);
    await admin('DELETE', '/__admin/stats');
    const query = `query($id: ID!) { user(id: $id) { notifications(first: 1) { totalCount } } }`;
    const startedAt = performance.now();
    const results = await Promise.all(
      Array.from({ length: 300 }, async (_, i) => {
        await new Promise((r) => setTimeout(r, startedAt + (i * 5000) / 300 - performance.now()));
        return gql(instances[i % 2]!.url, query, { id: users[i]!.user_id });
      }),
    );
    const stats = (await admin('GET', '/__admin/stats')) as StatsSnapshot;
    const route = stats.routes['GET /v1/users/:id/notifications']!;
    const refused = route.statuses['429'] ?? 0;
    // bench/rate-limit.ts measures the target (at most 10 %: 4-7 % on a quiet machine); here other suites share the
    // two cores and late calls bunch, so the bound is looser, still far from the 73 % of a server that learns nothing.
    expect(refused / route.calls).toBeLessThanOrEqual(0.2);
    // No call is retried before its Retry-After. A call of the other instance may be past its turn while the 429 is
    // being shared, or held up by a busy event loop between its turn and the wire: a few, not the dozens of a server
    // that pauses only itself (76 of 236 calls before the pause was shared and re-checked after a token wait).
    // The bound is 15 %: the suite runs beside others that start browsers and process sets on the same two cores, and
    // such runs put 12 of 174 calls (7 %) and 20 of 173 (12 %) late; run alone it stays within 10 %. An unshared
    // pause is not what it catches: with the 429 no longer written to Redis, the shared bucket still spaced the calls
    // (4 of 176 late, session 38) and the learned-rate check below is what failed.
    expect(stats.retriedEarly).toBe(0);
    expect(stats.ignoredRetryAfter).toBeLessThanOrEqual(route.calls * 0.15);
    expect(results.every((r) => r.status === 200)).toBe(true);
    // The vendor's capacity is used, not left idle out of caution: seconds fully inside the run.
    const seconds = Object.keys(stats.perSecond)
      .map(Number)
      .sort((a, b) => a - b)
      .slice(1, -1);
    const accepted = seconds.reduce((n, s) => n + Math.min(20, stats.perSecond[s]!), 0);
    expect(accepted / (seconds.length * 20)).toBeGreaterThanOrEqual(0.75);

    // What could not get a turn within its deadline was refused by our own limiter, typed, never by a vendor's 429 passed on.
    const errors: AnyData[] = results.flatMap((r) => r.body.errors ?? []);
    expect(errors.every((e) => e.path.join('.') === 'user.notifications')).toBe(true);
    for (const e of errors) expect(['SOURCE_RATE_LIMITED', 'SOURCE_TIMEOUT']).toContain(e.extensions.code);
    for (const e of errors.filter((x) => x.extensions.code === 'SOURCE_RATE_LIMITED')) expect(e.extensions.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    // The learned rate is shown, below the configured 80.
    const learned = await Promise.all(
      instances.map(
        async (i) => ((await gql(i.url, `{ sources { name rateLimitPerSec } }`)).body.data.sources as AnyData[]).find((s) => s.name === 'notifications')!.rateLimitPerSec as number,
      ),
    );
    for (const rate of learned) expect(rate).toBeLessThan(80);
  }, 60_000);

  it('when Redis goes away the instances fall back to local buckets and keep answering; they share again when it returns', async () => {
    await redis.stop();
    await Promise.all(instances.map((i) => i.process.waitFor(/Redis unreachable/, 10_000)));
    expect(await limiterModes()).toEqual(['LOCAL', 'LOCAL']);
    const during = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        gql(instances[i % 2]!.url, `query($id: ID!) { user(id: $id) { name notifications(first: 1) { totalCount } } }`, { id: users[400 + i]!.user_id }),
      ),
    );
    for (const r of during) {
      expect(r.status).toBe(200);
      expect(r.body.data.user.name).toBeTypeOf('string');
    }

    await redis.start();
    await Promise.all(instances.map((i) => i.process.waitFor(/Redis is back/, 15_000)));
    expect(await limiterModes()).toEqual(['SHARED', 'SHARED']);
  }, 60_000);
});
