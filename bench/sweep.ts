/**
 * `npx tsx bench/sweep.ts`: how our server's cost grows, in two sweeps on the
 * simulated vendors at 20 ± 5 ms, a fresh server (as `start:prod` runs it,
 * WORKERS=1, no Redis) for every point:
 * - users per query 1, 10, 50, 100, 500 at 50 connections: `users(ids:)` with
 *   name, page views and unread count of users picked at random from 10,000
 *   (the first seconds are misses, the L1 fills and evicts as it goes);
 * - connections 10, 50, 200, 1,000 at one user per query: the dashboard of a
 *   random one of 1,000 users.
 * Reports per point req/s and CPU ms per query counted over the queries
 * answered (a 503 refusal is not a query served; its small cost is in the CPU),
 * p50/p99 over all responses, peak RSS of the server (from /proc), and the
 * 503s it answered when it shed load. Writes an
 * SVG chart (BENCH_SWEEP_CHART, default bench/sweep.svg) and, with `--write`,
 * appends the table to bench/RESULTS.md.
 *
 * BENCH_DURATION (s per point, default 8), BENCH_USERS_SWEEP (default 1,10,50,100,500),
 * BENCH_CONNECTIONS_SWEEP (default 10,50,200,1000), BENCH_NODE_ARGS (default start:prod's), BENCH_PROFILE=1.
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import autocannon from 'autocannon';
import { SignJWT } from 'jose';
import { sweepChart, type SweepPoint } from './chart.js';
import { cpuMs, ourNodeArgs, peakRssMb, ROOT, simulatedUserIds, start, startUpstreams, UNLIMITED } from './harness.js';
import { shortTable, step } from './progress.js';

const DURATION = Number(process.env.BENCH_DURATION ?? 8);
const USERS_SWEEP = (process.env.BENCH_USERS_SWEEP ?? '1,10,50,100,500').split(',').filter(Boolean).map(Number);
const CONNECTIONS_SWEEP = (process.env.BENCH_CONNECTIONS_SWEEP ?? '10,50,200,1000').split(',').filter(Boolean).map(Number);
const SECRET = 'bench-secret-bench-secret-bench-secret!';
const POOL = 10_000;
/** As `npm run start:prod` runs it, unless BENCH_NODE_ARGS says otherwise. */
const NODE_ARGS = ourNodeArgs();
/** BENCH_PROFILE=1: each point's server writes a V8 CPU profile to bench/.tmp/ (read with bench/profile-summary.ts). */
const PROFILE = process.env.BENCH_PROFILE ? ['--cpu-prof', '--cpu-prof-dir=bench/.tmp'] : [];

const upstreams = await step(`seeding ${POOL.toLocaleString('en')} users in the simulated vendors`, 3, () =>
  startUpstreams({ UPSTREAMS_LATENCY_MS: '20', UPSTREAMS_JITTER_MS: '5', UPSTREAMS_USERS: String(POOL + 200) }),
);
const { env } = upstreams;
const ids = await simulatedUserIds(env, POOL);
const token = await new SignJWT({ scope: 'admin' }).setProtectedHeader({ alg: 'HS256' }).setSubject('bench').setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));
const pick = (n: number) => ids[Math.floor(Math.random() * n)]!;
const LIST = `query List($ids: [ID!]!) { users(ids: $ids) { name metrics { pageViews } unreadNotificationCount } }`;
const DASHBOARD = `query Dashboard($id: ID!) { user(id: $id) { id name avatarUrl metrics { pageViews sessions conversionRate } unreadNotificationCount notifications(first: 5) { totalCount edges { node { id title read createdAt } } } } }`;

interface Point extends SweepPoint {
  sweep: 'users per query' | 'connections';
  'req/s': number;
  'p50 ms': number;
  shed: number;
  errors: number;
  /** The simulated vendors' process, as a share of one core: at 100 % the vendors, not the gateway, set the pace. */
  vendorCpu: number;
}

async function run(sweep: Point['sweep'], x: number, connections: number, body: () => string): Promise<Point> {
  const server = await start(
    'dist/main.js',
    { ...UNLIMITED, ...env, PORT: '0', AUTH_JWT_SECRET: SECRET, LOG_LEVEL: 'warn', NODE_ENV: 'production', WORKERS: '1' },
    /GraphQL endpoint: (\S+)/,
    [...NODE_ARGS, ...PROFILE],
  );
  const url = /GraphQL endpoint: (\S+)/.exec(server.output())![1]!;
  const pid = server.child.pid!;
  try {
    const cpuBefore = cpuMs(pid);
    const vendorCpuBefore = cpuMs(upstreams.child.pid!);
    const startedAt = performance.now();
    let shed = 0;
    let errors = 0;
    let sample: string | undefined;
    const result = await step(
      `${sweep} ${x}`,
      DURATION,
      () =>
        new Promise<autocannon.Result>((resolve, reject) => {
          autocannon(
            {
              url,
              connections,
              duration: DURATION,
              // Past capacity a request may wait for its turn: autocannon's 10 s default would count it as a timeout.
              timeout: 30,
              requests: [
                {
                  method: 'POST',
                  headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
                  setupRequest: (req) => ({ ...req, body: body() }),
                  onResponse: (status, text) => {
                    if (status === 503) shed++;
                    else if (status !== 200 || text.includes('"errors"')) {
                      errors++;
                      sample ??= `${status} ${text.slice(Math.max(0, text.indexOf(`"errors"`)), Math.max(0, text.indexOf(`"errors"`)) + 600)}`;
                    }
                  },
                },
              ],
            },
            (error, done) => (error ? reject(error) : resolve(done)),
          );
        }),
    );
    if (sample) console.warn(`  first error: ${sample}`);
    const answered = result.requests.total - shed;
    const vendorCpu = Math.round(((cpuMs(upstreams.child.pid!) - vendorCpuBefore) / (performance.now() - startedAt)) * 100);
    return {
      vendorCpu,
      sweep,
      x,
      'req/s': Math.round((result.requests.average * answered) / Math.max(1, result.requests.total)),
      'p50 ms': result.latency.p50,
      p99Ms: result.latency.p99,
      cpuMsPerQuery: Math.round(((cpuMs(pid) - cpuBefore) / Math.max(1, answered)) * 1000) / 1000,
      rssMb: peakRssMb(pid),
      shed,
      errors: errors + result.errors + result.timeouts,
    };
  } finally {
    server.child.kill('SIGTERM');
    await new Promise((r) => server.child.once('exit', r));
  }
}

const points: Point[] = [];
for (const n of USERS_SWEEP) {
  points.push(await run('users per query', n, 50, () => JSON.stringify({ query: LIST, variables: { ids: Array.from({ length: n }, () => pick(POOL)) } })));
}
for (const c of CONNECTIONS_SWEEP) {
  points.push(await run('connections', c, c, () => JSON.stringify({ query: DASHBOARD, variables: { id: pick(1000) } })));
}
upstreams.child.kill('SIGTERM');

const rows = points.map((p) => ({
  sweep: p.sweep,
  x: p.x,
  'req/s': p['req/s'],
  'p50 ms': p['p50 ms'],
  'p99 ms': p.p99Ms,
  'CPU ms/q': p.cpuMsPerQuery,
  'RSS MB': p.rssMb,
  '503 shed': p.shed,
  errors: p.errors,
  'vendors CPU %': p.vendorCpu,
}));
console.log(`\n${shortTable(rows)}`);
const chartFile = process.env.BENCH_SWEEP_CHART ?? `${ROOT}bench/sweep.svg`;
writeFileSync(chartFile, sweepChart(points, `How cost grows — ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} × ${os.cpus()[0]?.model.trim()}`));
console.log(`chart: ${chartFile}`);

if (process.argv.includes('--write')) {
  const header = `| sweep | x | req/s | p50 ms | p99 ms | CPU ms/q | RSS MB | 503 shed | errors | vendors CPU % |\n|---|---|---|---|---|---|---|---|---|---|\n`;
  const table = rows.map((r) => `| ${Object.values(r).join(' | ')} |`).join('\n');
  appendFileSync(
    `${ROOT}bench/RESULTS.md`,
    `\n## ${new Date().toISOString().slice(0, 10)} — how cost grows (\`npx tsx bench/sweep.ts --write\`)\n\nMachine: ${os.cpus().length} × ${os.cpus()[0]?.model.trim()}, Node ${process.version}. ${DURATION} s per point, a fresh \`start:prod\` server (WORKERS=1, no Redis) each.\n\n${header}${table}\n\n![sweeps](sweep.svg)\n`,
  );
}
process.exit(0);
