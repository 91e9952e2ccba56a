import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RestartGuard } from '../src/cluster/restart-guard.js';
import { Dataset } from '../simulator/dataset.js';
import { runScript, startUpstreamsProcess, stopAll, type Child } from './helpers/processes.js';

/**
 * `WORKERS=2 npm run start:prod`, as deployed without Redis: two workers on
 * one port under a node:cluster primary. What is meant to be one stays one
 * (vendor budgets halved per worker, one change-feed poller), a write on one
 * worker is fresh on the other, /metrics is the set's, a killed worker is
 * replaced, and SIGTERM drains them all.
 */
type AnyData = Record<string, any>;
const SECRET = randomBytes(32).toString('base64url');
const WEBHOOK_SECRET = `whsec_${randomBytes(24).toString('base64')}`;
let vendorsEnv: Record<string, string>;
const user = new Dataset().users[44]!.user_id;
let primary: Child;
let url: string;
let token: string;

/** Each request on a connection of its own: the cluster hands new connections to the workers in turn. */
async function gql(query: string, variables: Record<string, unknown> = {}): Promise<AnyData> {
  const dispatcher = new Agent();
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
      dispatcher,
    } as RequestInit);
    return (await res.json()) as AnyData;
  } finally {
    await dispatcher.close();
  }
}

/** Every sample of one metric line in the Prometheus text, summed. */
async function metric(prefix: string): Promise<number> {
  const text = await (await fetch(url.replace('/graphql', '/metrics'))).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(prefix))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

describe('WORKERS=2 without Redis', () => {
  beforeAll(async () => {
    const vendors = await startUpstreamsProcess();
    vendorsEnv = vendors.env;
    primary = runScript('src/main.ts', {
      ...vendors.env,
      PORT: '0',
      NODE_ENV: 'production',
      WORKERS: '2',
      LOG_LEVEL: 'info',
      AUTH_JWT_SECRET: SECRET,
      NOTIFICATIONS_WEBHOOK_SECRET: WEBHOOK_SECRET,
      WORKER_STALL_TIMEOUT_MS: '5000',
    });
    [, url] = (await primary.waitFor(/GraphQL endpoint: (\S+)/, 60_000)) as [string, string];
    await primary.waitFor(/Worker 0 listening[\s\S]*Worker 1 listening|Worker 1 listening[\s\S]*Worker 0 listening/, 60_000);
    token = await new SignJWT({ scope: 'admin' }).setProtectedHeader({ alg: 'HS256' }).setSubject(user).setExpirationTime('10m').sign(new TextEncoder().encode(SECRET));
  }, 90_000);
  afterAll(() => stopAll());

  it('one port, two workers; each keeps half of every vendor budget, and only one polls the change feed', async () => {
    const out = primary.output();
    expect(out).toMatch(/Primary: starting 2 workers on one port/);
    expect(out).toMatch(/2 workers without REDIS_URL: each sends at 1\/2 of every vendor's budget/);
    expect(out.match(/Change feed: identity's changes pulled/g)).toHaveLength(1);
    // Each worker's half, as /metrics has it per worker (the gauge is the set's max); Query.sources says the set's sum.
    const text = await (await fetch(url.replace('/graphql', '/metrics'))).text();
    expect(text).toMatch(/gateway_upstream_rate_limit_per_second\{[^}]*source="identity"[^}]*\} 20\n/);
    const sources = (await gql(`{ sources { name rateLimitPerSec } }`)).data.sources as { name: string; rateLimitPerSec: number }[];
    expect(sources.find((s) => s.name === 'identity')!.rateLimitPerSec).toBe(40);
    expect(sources.find((s) => s.name === 'analytics')!.rateLimitPerSec).toBe(80);
  });

  it('a write through one worker is fresh on the other (invalidation through the primary), and /metrics counts the whole set', async () => {
    const count = `query($u: ID!) { user(id: $u) { unreadNotificationCount } }`;
    const before = new Set<number>();
    // Enough requests that both workers cache the count (connections are spread over the workers).
    for (let i = 0; i < 10; i++) before.add((await gql(count, { u: user })).data.user.unreadNotificationCount);
    expect(before.size).toBe(1);
    const sent = await gql(`mutation($u: ID!) { sendNotification(input: { userId: $u, title: "across workers", body: "b", channel: PUSH }) { status } }`, { u: user });
    expect(sent.data.sendNotification.status).toBe('COMPLETE');
    await new Promise((r) => setTimeout(r, 100));
    for (let i = 0; i < 10; i++) expect((await gql(count, { u: user })).data.user.unreadNotificationCount).toBe([...before][0]! + 1);
    // 21 operations so far in this test; each scrape, whichever worker answers it, reports the set's total.
    for (let i = 0; i < 4; i++) expect(await metric('gateway_graphql_operations_total')).toBeGreaterThanOrEqual(22);
  });

  it("/status and Query.sources are the whole set's, whichever worker answers: the same calls and the set's rate from each", async () => {
    const dataset = new Dataset();
    for (let i = 0; i < 6; i++) expect((await gql(`query($u: ID!) { user(id: $u) { metrics { pageViews } } }`, { u: dataset.users[200 + i]!.user_id })).errors).toBeUndefined();
    const reads: [number, number][] = [];
    for (let i = 0; i < 4; i++) {
      const dispatcher = new Agent();
      const res = await fetch(url.replace('/graphql', '/status/data'), { headers: { authorization: `Bearer ${token}` }, dispatcher } as RequestInit);
      const analytics = ((await res.json()) as AnyData).sources.find((s: AnyData) => s.name === 'analytics');
      await dispatcher.close();
      reads.push([analytics.last15m.calls, analytics.rateLimitPerSec]);
    }
    // Analytics is called by queries alone (no feed, no webhook), so every read says the same. Before, each worker
    // said its own calls and its half of the rate, turn about.
    expect(new Set(reads.map((r) => JSON.stringify(r))).size).toBe(1);
    expect(reads[0]![0]).toBeGreaterThanOrEqual(6);
    expect(reads[0]![1]).toBe(80);
    // Query.sources too (gql opens a connection per request, so the reads go to both workers in turn).
    const asked: [number, number][] = [];
    for (let i = 0; i < 4; i++) {
      const analytics = ((await gql(`{ sources { name calls rateLimitPerSec } }`)).data.sources as AnyData[]).find((s) => s.name === 'analytics')!;
      asked.push([analytics.calls, analytics.rateLimitPerSec]);
    }
    expect(new Set(asked.map((r) => JSON.stringify(r))).size).toBe(1);
    expect(asked[0]).toEqual(reads[0]);
  });

  it('a vendor event reaching one worker reaches subscribers on both (live events through the primary)', async () => {
    await fetch(`${vendorsEnv.NOTIFICATIONS_URL}/__admin/webhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ url: url.replace('/graphql', '/webhooks/notifications'), secret: WEBHOOK_SECRET, retryDelaysMs: [200] }),
    });
    // Two streams on connections of their own: one on each worker.
    const streams = await Promise.all(
      [0, 1].map(async () => {
        const dispatcher = new Agent();
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${token}` },
          body: JSON.stringify({ query: `subscription($u: ID!) { notificationAdded(userId: $u) { title } }`, variables: { u: user } }),
          dispatcher,
        } as RequestInit);
        const reader = res.body!.getReader();
        let text = '';
        const read = (async () => {
          for (;;) {
            const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
            if (done) return;
            text += new TextDecoder().decode(value);
          }
        })();
        return { text: () => text, close: () => dispatcher.destroy(), read };
      }),
    );
    await new Promise((r) => setTimeout(r, 200));
    await gql(`mutation($u: ID!) { sendNotification(input: { userId: $u, title: "heard by both", body: "b", channel: PUSH }) { status } }`, { u: user });
    for (let i = 0; i < 40 && !streams.every((s) => s.text().includes('heard by both')); i++) await new Promise((r) => setTimeout(r, 50));
    expect(streams.map((s) => s.text().includes('heard by both'))).toEqual([true, true]);
    for (const s of streams) await s.close();
  });

  it('a worker that dies is replaced, and the server keeps answering', async () => {
    const [, pid] = (primary.output().match(/"worker":1,"pid":(\d+)[^\n]*Worker 1 listening/) ?? []) as [string, string];
    expect(pid).toBeDefined();
    process.kill(Number(pid), 'SIGKILL');
    await primary.waitFor(/Worker 1 exited \(SIGKILL\); replacing it/, 10_000);
    await primary.waitFor(new RegExp(`"worker":1,"pid":(?!${pid})\\d+[^\\n]*Worker 1 listening`), 30_000);
    for (let i = 0; i < 6; i++) expect((await gql(`{ viewer { id } }`)).data.viewer.id).toBe(user);
  }, 60_000);

  it('a worker whose event loop is stuck (here: frozen with SIGSTOP) is killed after WORKER_STALL_TIMEOUT_MS and replaced', async () => {
    const [, pid] = (primary.output().match(/"worker":0,"pid":(\d+)[^\n]*Worker 0 listening/) ?? []) as [string, string];
    expect(pid).toBeDefined();
    const frozenAt = Date.now();
    process.kill(Number(pid), 'SIGSTOP');
    const [line] = await primary.waitFor(/\{[^\n]*Worker 0 has not said it is alive[^\n]*/, 10_000);
    const said = JSON.parse(line) as { level: number; pid: number; silentMs: number };
    expect(said).toMatchObject({ level: 50, pid: Number(pid), timeoutMs: 5000 });
    expect(said.silentMs).toBeGreaterThan(5000);
    expect(Date.now() - frozenAt).toBeLessThan(8000);
    await primary.waitFor(/Worker 0 exited \(SIGKILL\); replacing it/, 10_000);
    await primary.waitFor(new RegExp(`"worker":0,"pid":(?!${pid})\\d+[^\\n]*Worker 0 listening`), 30_000);
    for (let i = 0; i < 6; i++) expect((await gql(`{ viewer { id } }`)).data.viewer.id).toBe(user);
    // The other worker, alive all along, was left alone.
    expect(primary.output()).not.toMatch(/Worker 1 has not said it is alive/);
  }, 60_000);

  it('SIGTERM to the primary drains every worker and exits 0', async () => {
    primary.child.kill('SIGTERM');
    const [code] = (await once(primary.child, 'exit')) as [number | null];
    expect(code).toBe(0);
    expect(primary.output()).toMatch(/All workers stopped/);
    await expect(fetch(url)).rejects.toThrow();
  }, 30_000);
});

describe('RestartGuard', () => {
  it('replaces at once, then after growing pauses, and gives up past 5 deaths a minute', () => {
    const guard = new RestartGuard(5, 60_000);
    expect([0, 1, 2, 3, 4].map((i) => guard.next(1000 + i))).toEqual([0, 250, 500, 1000, 2000]);
    expect(guard.next(2000)).toBeNull();
    // A minute after the first deaths, replacing starts again.
    expect(guard.next(62_000)).toBe(0);
  });
});
