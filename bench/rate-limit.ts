/**
 * A vendor whose rate limit is tighter than our budget: the simulated
 * notifications vendor allows 20 requests a second while the server keeps its
 * default budget (80/s). 300 single-user notification queries from one admin
 * caller, spread evenly over 5 s, against one instance, then two instances
 * sharing one Redis. Reports what the vendor saw: list calls, how many it
 * refused (429), calls retried before their 429's Retry-After, calls of any
 * kind arriving during a pause more than 50 ms after the 429 went out (the
 * stricter figure: an instance that had not yet heard of another's 429, or a
 * call delayed between its turn and the wire), 5xx, and how much of its
 * capacity was used.
 *
 *   npx tsx bench/rate-limit.ts            # needs Redis on 127.0.0.1:6379 for the two-instance run (REDIS_URL to change)
 */
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { Dataset } from '../simulator/dataset.js';
import type { StatsSnapshot } from '../simulator/index.js';
import { start, startUpstreams } from './harness.js';
import { step } from './progress.js';

const VENDOR_LIMIT = 20;
const QUERIES = Number(process.env.RL_QUERIES ?? 300);
const SPREAD_MS = Number(process.env.RL_SPREAD_MS ?? 5000);
const LIST_ROUTE = 'GET /v1/users/:id/notifications';
const QUERY = `query($id: ID!) { user(id: $id) { notifications(first: 5) { totalCount edges { node { id } } } } }`;

const secret = randomBytes(32).toString('base64url');
const users = new Dataset().users;
const upstreams = await startUpstreams();
const notificationsUrl = upstreams.env.NOTIFICATIONS_URL!;

async function admin(method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${notificationsUrl}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return res.json();
}

async function instance(extra: Record<string, string>): Promise<{ url: string; stop: () => void }> {
  const started = await start(
    'src/main.ts',
    { ...upstreams.env, PORT: '0', LOG_LEVEL: 'warn', AUTH_JWT_SECRET: secret, ...extra },
    /GraphQL endpoint: \S+|"msg":"GraphQL endpoint/,
  );
  const url = /GraphQL endpoint: (\S+)/.exec(started.output())?.[1] ?? /"url":"([^"]+)"/.exec(started.output())![1]!;
  return { url, stop: () => started.child.kill('SIGTERM') };
}

interface Outcome {
  instances: number;
  ok: number;
  rateLimited: number;
  otherErrors: number;
  http5xx: number;
  listCalls: number;
  list2xx: number;
  list429: number;
  ignoredRetryAfter: number;
  retriedEarly: number;
  capacityUsed: number;
  steadyCapacityUsed: number;
}

async function run(count: number, env: Record<string, string>): Promise<Outcome> {
  const servers = await Promise.all(Array.from({ length: count }, () => instance(env)));
  const token = await new SignJWT({ scope: 'admin' })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(users[0]!.user_id)
    .setExpirationTime('10m')
    .sign(new TextEncoder().encode(secret));
  // Warm each instance (identity token, connections), then start from a clean vendor.
  for (const s of servers)
    await fetch(s.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ query: '{ __typename }' }) });
  await admin('POST', '/__admin/reset');
  await admin('POST', '/__admin/faults', { rateLimitPerSec: VENDOR_LIMIT });
  const startedAt = performance.now();
  const results = await Promise.all(
    Array.from({ length: QUERIES }, async (_, i) => {
      const due = startedAt + (i * SPREAD_MS) / QUERIES;
      await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
      const res = await fetch(servers[i % count]!.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: QUERY, variables: { id: users[100 + i]!.user_id } }),
      });
      return { status: res.status, body: (await res.json()) as { errors?: { extensions?: { code?: string } }[] } };
    }),
  );
  const stats = (await admin('GET', '/__admin/stats')) as StatsSnapshot;
  for (const s of servers) s.stop();
  const route = stats.routes[LIST_ROUTE] ?? { calls: 0, statuses: {} as Record<string, number> };
  const list2xx = Object.entries(route.statuses)
    .filter(([status]) => status.startsWith('2'))
    .reduce((n, [, c]) => n + c, 0);
  const seconds = Object.keys(stats.perSecond)
    .map(Number)
    .sort((a, b) => a - b);
  const span = seconds.length === 0 ? 1 : seconds.at(-1)! - seconds[0]! + 1;
  // The first and last seconds are partly outside the run: the steady figure leaves them out.
  const inner = seconds.slice(1, -1);
  const accepted = (s: number) => Math.min(VENDOR_LIMIT, stats.perSecond[s] ?? 0);
  const steady = inner.length === 0 ? 0 : inner.reduce((n, s) => n + accepted(s), 0) / (inner.length * VENDOR_LIMIT);
  const codes = results.flatMap((r) => (r.body.errors ?? []).map((e) => e.extensions?.code));
  return {
    instances: count,
    ok: results.filter((r) => r.status === 200 && !r.body.errors).length,
    rateLimited: codes.filter((c) => c === 'SOURCE_RATE_LIMITED').length,
    otherErrors: codes.filter((c) => c !== 'SOURCE_RATE_LIMITED').length,
    http5xx: results.filter((r) => r.status >= 500).length,
    listCalls: route.calls,
    list2xx,
    list429: route.statuses['429'] ?? 0,
    ignoredRetryAfter: stats.ignoredRetryAfter,
    retriedEarly: stats.retriedEarly,
    capacityUsed: list2xx / (span * VENDOR_LIMIT),
    steadyCapacityUsed: steady,
  };
}

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const outcomes = [
  await step('one instance', SPREAD_MS / 1000 + 2, () => run(1, {})),
  await step('two instances on Redis', SPREAD_MS / 1000 + 2, () => run(2, { REDIS_URL: redisUrl, REDIS_KEY_PREFIX: `bench-rl-${randomBytes(3).toString('hex')}:` })),
];
upstreams.child.kill('SIGTERM');

const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
console.log(`\n${QUERIES} single-user notification queries over ${SPREAD_MS / 1000} s; vendor limit ${VENDOR_LIMIT}/s; our budget the default\n`);
console.log(
  '| instances | queries ok | SOURCE_RATE_LIMITED | other errors | HTTP 5xx | list calls | 2xx | 429 (share) | retried before Retry-After | any call during a pause | vendor capacity used (steady) |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
for (const o of outcomes) {
  console.log(
    `| ${o.instances} | ${o.ok} | ${o.rateLimited} | ${o.otherErrors} | ${o.http5xx} | ${o.listCalls} | ${o.list2xx} | ${o.list429} (${pct(o.list429 / Math.max(1, o.listCalls))}) | ${o.retriedEarly} | ${o.ignoredRetryAfter} | ${pct(o.capacityUsed)} (${pct(o.steadyCapacityUsed)}) |`,
  );
}
const failed = outcomes.filter((o) => o.list429 / Math.max(1, o.listCalls) > 0.1 || o.retriedEarly > 0 || o.http5xx > 0 || o.steadyCapacityUsed < 0.8);
console.log(
  failed.length === 0
    ? '\nTargets met: 429s at most 10 % of list calls, none retried early, no 5xx, at least 80 % of the vendor used.'
    : `\nTargets missed for ${failed.map((o) => `${o.instances} instance(s)`).join(', ')}.`,
);
process.exit(failed.length === 0 ? 0 : 1);
