/**
 * `npx tsx bench/instructions.ts`: what a query costs, in machine
 * instructions rather than seconds. Each gateway — ours (as `start:prod` runs
 * it, WORKERS=1, L1 only) and the peers with their response caches on — runs
 * under `valgrind --tool=callgrind`, which counts every instruction every
 * thread of the process executes (the JIT's code, the garbage collector's and
 * node's own included). After a warm-up, the counters are zeroed, a fixed
 * sequence of requests is sent (the same for every gateway), and the total is
 * read, less what the process does idle over as long. Unlike CPU time on a
 * shared VM, the count does not depend on what else the machine is doing: the
 * same build's count repeats to ~0.3 %, so two builds, or ours and a peer,
 * compare in one run of a few minutes.
 *
 * Scenarios (BENCH_SCENARIO):
 * - `dashboard-hot` (default): the hot dashboard of bench/run.ts, 20 users in
 *   turn, every answer a response-cache hit (issue 21: "a hit costs at most
 *   half the CPU of the best cached peer's"). Every gateway's window must be
 *   answered without a vendor call.
 * - `list-50`: 50 users' names, page views and unread counts, drawn from 1,000
 *   by a seeded generator; no two lists alike, so no response cache helps and
 *   ours answers from L1 (its window must need no vendor call), the peers from
 *   their vendors.
 * - `dashboard-cold`: a dashboard of a user no earlier request asked for (the vendors seed enough users for the
 *   warm-up and the window), so every request calls the vendors; the peers are Apollo Server + RESTDataSource and
 *   floor-batched (the bound: the vendor calls, batched across requests, and JSON, nothing else). Vendor calls are
 *   reported beside the count: under valgrind requests arrive ~50× slower, so cross-request batches are smaller than
 *   in a bench run and a count compares builds and gateways in this tool, not against bench/run.ts.
 * - `list-cold`: 50 users' names, page views and unread counts, none asked for before (request n asks for the 50
 *   after request n − 1's), against the same peers as the cold dashboard: issue 21's "list-cold ≥ 3× Apollo".
 *
 * BENCH_WARMUP (requests, default 16,000, 14,000 on the cold dashboard: by then V8 has compiled most of the path; 3,000
 * cold lists, which are 150,000 users' resolvers), BENCH_REQUESTS (counted, 4,000; 400 cold lists),
 * BENCH_CONNECTIONS (default 50), BENCH_BASELINES (default apollo-cached,yoga-cached,http-floor — the last not a peer
 * but the bound: node:http writing a fixed answer, what no request can cost less than),
 * BENCH_GATEWAY (our entry, default dist/main.js, built first), BENCH_REDIS_URL (ours with L2 and the shared limits on
 * that Redis, as `ours (l1+l2)`; Redis's own instructions are not counted), BENCH_OURS_ENV ("K=V …": ours with other
 * settings, e.g. `CACHE_ENABLED=false`), BENCH_NODE_ARGS (our node flags instead of start:prod's;
 * with BENCH_OUTPUT=file, e.g. `--trace-gc` shows what the collector does in the window). `--write` appends the table to bench/RESULTS.md.
 * Needs valgrind (Debian's package); one to four minutes a gateway, four to eight on the cold dashboard and the cold list.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import autocannon from 'autocannon';
import { SignJWT } from 'jose';
import { Dataset } from '../simulator/dataset.js';
import { CACHED_ENTITIES, entitySettings } from '../src/sources/registry.js';
import { ourNodeArgs, ROOT, simulatedUserIds, start, startUpstreams, UNLIMITED } from './harness.js';
import { shortTable, step } from './progress.js';

const scenarioName = process.env.BENCH_SCENARIO ?? 'dashboard-hot';
const coldList = scenarioName === 'list-cold';
const cold = scenarioName === 'dashboard-cold' || coldList;
/** Users a request asks for. */
const PER_REQUEST = coldList ? 50 : 1;
// A cold path is longer than a hit's: --trace-opt shows V8 optimizing most of it over the first ~12,000 cold requests;
// past that 7–13 compiles per 1,000 remain (closures yoga, envelop and graphql-jit make per request, each optimized
// anew; bench/RESULTS.md, session 19), counted in.
const WARMUP = Number(process.env.BENCH_WARMUP ?? (coldList ? 3000 : cold ? 14000 : 16000));
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? (coldList ? 400 : 4000));
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const SECRET = 'bench-secret-bench-secret-bench-secret!';
const LIST = `query List($ids: [ID!]!) { users(ids: $ids) { name metrics { pageViews } unreadNotificationCount } }`;
const DASHBOARD = `query Dashboard($id: ID!) { user(id: $id) { id name avatarUrl metrics { pageViews sessions conversionRate } unreadNotificationCount notifications(first: 5) { totalCount edges { node { id title read createdAt } } } } }`;
const OUT_DIR = `${ROOT}bench/.tmp`;

try {
  execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
} catch {
  console.error('bench/instructions.ts needs valgrind (apt-get install valgrind)');
  process.exit(1);
}

/** BENCH_OURS_ENV="K=V K2=V2": settings of ours to compare (e.g. CACHE_ENABLED=false), over the ones above. */
const oursEnv = Object.fromEntries(
  (process.env.BENCH_OURS_ENV ?? '')
    .split(' ')
    .filter(Boolean)
    .map((kv) => {
      const at = kv.indexOf('=');
      if (at < 1) throw new Error(`BENCH_OURS_ENV entries are NAME=value, not "${kv}"`);
      return [kv.slice(0, at), kv.slice(at + 1)];
    }),
);
const ourEntry = process.env.BENCH_GATEWAY ?? 'dist/main.js';
if (ourEntry === 'dist/main.js') execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' });
const PEERS: Record<string, { script: string; env: Record<string, string> }> = {
  'apollo-cached': { script: 'bench/baselines/apollo.mjs', env: { RESPONSE_CACHE: '1' } },
  // Its 60 s TTL would run out within a count that runs ~50× slower than a bench run; its answers are kept 10 minutes.
  'yoga-cached': { script: 'bench/baselines/yoga.mjs', env: { RESPONSE_CACHE: '1', RESPONSE_CACHE_TTL_MS: '600000' } },
  // Not a peer but the bound: node:http reading the request and writing a fixed answer, nothing else.
  'http-floor': { script: 'bench/baselines/http-floor.mjs', env: {} },
  apollo: { script: 'bench/baselines/apollo.mjs', env: {} },
  // The bound under a cold request: the vendor calls (batched across requests within 2 ms) and JSON, nothing else.
  'floor-batched': { script: 'bench/baselines/floor.mjs', env: { FLOOR_BATCH_MS: '2' } },
};
/** Bounds, shown beside the peers but never the "best peer" a ratio is taken against. */
const BOUNDS = new Set(['http-floor', 'floor-batched']);
const peers = (process.env.BENCH_BASELINES ?? (cold ? 'apollo,floor-batched' : 'apollo-cached,yoga-cached,http-floor')).split(',').filter(Boolean);
for (const name of peers) if (!PEERS[name]) throw new Error(`unknown BENCH_BASELINES entry "${name}" (${Object.keys(PEERS).join(', ')})`);
if (peers.length > 0 && !readdirSync(`${ROOT}bench/baselines`).includes('node_modules')) {
  console.log('installing the baselines (bench/baselines, npm ci)…');
  execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--prefix', 'bench/baselines'], { cwd: ROOT, stdio: 'inherit' });
}

// Cold: new users for every request, past the 1,000 the other scenarios draw from.
const USERS = cold ? 2000 + PER_REQUEST * (WARMUP + REQUESTS) : 1000;
const upstreams = await step('starting the simulated vendors', 3, () => startUpstreams({ UPSTREAMS_LATENCY_MS: '20', UPSTREAMS_JITTER_MS: '5', UPSTREAMS_USERS: String(USERS) }));
const { env } = upstreams;
const upstreamUrls = ['IDENTITY_URL', 'ANALYTICS_URL', 'NOTIFICATIONS_URL', 'AUDIT_URL'].map((k) => env[k]!);
/** Calls each vendor route has had ("GET /api/v2/users" …), all vendors together. */
const vendorCalls = async () => {
  const calls = new Map<string, number>();
  for (const u of upstreamUrls) {
    const { routes } = (await (await fetch(`${u}/__admin/stats`)).json()) as { routes: Record<string, { calls: number }> };
    for (const [route, stats] of Object.entries(routes)) calls.set(route, (calls.get(route) ?? 0) + stats.calls);
  }
  return calls;
};
/** The routes called between two readings, with their counts ("" for none). */
const callsBetween = (before: Map<string, number>, after: Map<string, number>) =>
  [...after]
    .map(([route, n]) => [route, n - (before.get(route) ?? 0)] as const)
    .filter(([, n]) => n > 0)
    .map(([route, n]) => `${n}× ${route}`)
    .join(', ');
const userIds = await simulatedUserIds(env, 1000);
const token = await new SignJWT({ scope: 'admin' }).setProtectedHeader({ alg: 'HS256' }).setSubject('bench').setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));

/** mulberry32: the same numbers in [0, 1) from the same seed, so every gateway is asked the same lists. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Scenario {
  /** The n-th request's body. */
  body: (n: number) => string;
  /** What one request is called in the table. */
  unit: string;
  /** Whether the peers must answer the window from their caches too (else only ours). */
  peersFromCache: boolean;
  /** Whether ours must answer the window from memory (every scenario but the cold ones). */
  oursFromCache?: false;
}
const hot = userIds.slice(500, 520);
// The simulator's own seeding (seed 42), so the cold scenarios can name users past the first 1,000.
const coldIds = cold ? new Dataset(42, USERS).users.map((u) => u.user_id) : [];
const SCENARIOS: Record<string, Scenario> = {
  'dashboard-hot': { body: (n) => JSON.stringify({ query: DASHBOARD, variables: { id: hot[n % hot.length] } }), unit: 'hit', peersFromCache: true },
  // Request n asks for user 2,000 + n, whom no earlier request asked for.
  'dashboard-cold': { body: (n) => JSON.stringify({ query: DASHBOARD, variables: { id: coldIds[2000 + n] } }), unit: 'query', peersFromCache: false, oursFromCache: false },
  'list-cold': {
    body: (n) => JSON.stringify({ query: LIST, variables: { ids: coldIds.slice(2000 + 50 * n, 2050 + 50 * n) } }),
    unit: 'list',
    peersFromCache: false,
    oursFromCache: false,
  },
  'list-50': (() => {
    const random = seeded(21);
    const lists: string[] = [];
    return {
      // Made in order and kept: request n is the same list for every gateway, whatever order autocannon asks them in.
      body: (n: number) => {
        while (lists.length <= n) lists.push(JSON.stringify({ query: LIST, variables: { ids: Array.from({ length: 50 }, () => userIds[Math.floor(random() * 1000)]) } }));
        return lists[n]!;
      },
      unit: 'list',
      peersFromCache: false,
    };
  })(),
};
if (!SCENARIOS[scenarioName]) throw new Error(`unknown BENCH_SCENARIO "${scenarioName}" (${Object.keys(SCENARIOS).join(', ')})`);
const scenario: Scenario = SCENARIOS[scenarioName];

/** Requests `from` to `from + amount - 1` of the scenario; resolves to the count not answered 200 without errors. */
async function send(url: string, from: number, amount: number): Promise<number> {
  let next = from;
  let failed = 0;
  await new Promise<autocannon.Result>((resolve, reject) =>
    autocannon(
      {
        url,
        connections: CONNECTIONS,
        amount,
        // Under valgrind a cold list waits its turn for many seconds: autocannon's 10 s would hang up on it.
        timeout: 600,
        requests: [
          {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
            setupRequest: (req) => ({ ...req, body: scenario.body(next++) }),
            onResponse: (status, body) => {
              if (status === 200 && !body.includes('"errors"')) return;
              if (failed++ === 0) console.log(`first failure: ${status} ${body.slice(Math.max(0, body.indexOf('"errors"')), 300)}`);
            },
          },
        ],
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    ),
  );
  return failed;
}

/** callgrind_control's command to a running process: on, zero, dump. */
const control = (pid: number, ...args: string[]) => execFileSync('callgrind_control', [...args, String(pid)], { encoding: 'utf8' });

/** The `totals:` line of a callgrind dump: instructions executed since the counters were zeroed. */
function dumpedInstructions(file: string): number {
  const totals = /^totals:\s+(\d+)/m.exec(readFileSync(file, 'utf8'));
  if (!totals) throw new Error(`no totals line in ${file}`);
  return Number(totals[1]);
}

interface Row extends Record<string, string | number> {
  gateway: string;
  /** The window's count less the idle count, over the requests. */
  instructions: number;
  'vendor calls in the window': string;
  'non-200 in the window': number;
}

mkdirSync(OUT_DIR, { recursive: true });
// Our entries' default TTLs (10 s for unread counts and notification pages) would expire within a window that runs
// ~50× slower under valgrind, and each expiry is a miss, not a hit: every entry is kept 10 minutes, as the peers' 60 s
// responses outlast their windows. The window checks it: no vendor call. Identity's change feed, a pull every 5 s
// whatever the load, is set to an hour: it would land in the window or in the idle count at random.
const longTtls = {
  ...Object.fromEntries(CACHED_ENTITIES.map((entity) => [`CACHE_${entitySettings(entity).env}_TTL_MS`, '600000'])),
  // "No such entity" too (a user the analytics vendor has no metrics for: 10 s by default).
  CACHE_NEGATIVE_TTL_MS: '600000',
};
const noBackgroundPull = { IDENTITY_CHANGE_FEED_INTERVAL_MS: '3600000' };
// Under valgrind the event loop lags by hundreds of ms, and a cold request waits on its vendor calls that much longer:
// the lag guard and the admission line's wait would refuse requests a bench run serves.
// Vendor timeouts and the request deadline stretch by as much, or a slow turn of the loop reads as a vendor timeout.
const noShedding = {
  LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0',
  LOAD_QUEUE_MAX_WAIT_MS: '600000',
  REQUEST_DEADLINE_MS: '60000',
  ...Object.fromEntries(['IDENTITY', 'ANALYTICS', 'NOTIFICATIONS', 'AUDIT'].map((s) => [`${s}_TIMEOUT_MS`, '30000'])),
};
const redisUrl = process.env.BENCH_REDIS_URL;
const targets = [
  {
    name: redisUrl ? 'ours (l1+l2)' : 'ours (l1)',
    script: ourEntry,
    env: {
      ...UNLIMITED,
      ...longTtls,
      ...noBackgroundPull,
      ...noShedding,
      PORT: '0',
      AUTH_JWT_SECRET: SECRET,
      LOG_LEVEL: 'warn',
      NODE_ENV: 'production',
      WORKERS: '1',
      CACHE_ENABLED: 'true',
      ...(redisUrl ? { REDIS_URL: redisUrl, REDIS_KEY_PREFIX: `bench-instr-${process.pid}:` } : {}),
      ...oursEnv,
    },
    nodeArgs: ourNodeArgs(),
  },
  ...peers.map((name) => ({ name, script: PEERS[name]!.script, env: { PORT: '0', ...PEERS[name]!.env }, nodeArgs: [] as string[] })),
];
/** With BENCH_OUTPUT, a line between the gateways' own output there (which the window's trace lines fall between). */
const mark = (what: string) => process.env.BENCH_OUTPUT && appendFileSync(process.env.BENCH_OUTPUT, `\n===== ${what}\n`);
const rows: Row[] = [];
for (const target of targets) {
  const slug = target.name.replace(/\W+/g, '-');
  const outFile = `${OUT_DIR}/callgrind.${slug}`;
  const ownDumps = () =>
    readdirSync(OUT_DIR)
      .filter((f) => f.startsWith(`callgrind.${slug}`))
      .map((f) => `${OUT_DIR}/${f}`);
  for (const old of ownDumps()) rmSync(old);
  // Instrumentation off until the warm-up is over: node starts and warms up about 5× slower under valgrind, not 50×.
  const launcher = ['valgrind', '--tool=callgrind', '--instr-atstart=no', '--smc-check=all-non-file', `--callgrind-out-file=${outFile}`];
  const gateway = await step(`${target.name}: starting under valgrind`, 20, () =>
    start(target.script, { ...env, ...target.env }, /GraphQL endpoint: (\S+)/, target.nodeArgs, { launcher, timeoutMs: 180_000 }),
  );
  const url = gateway.output().match(/GraphQL endpoint: (\S+)/)![1]!;
  const pid = gateway.child.pid!;
  await step(`${target.name}: warming up (${WARMUP} ${scenarioName})`, WARMUP / 500, () => send(url, 0, WARMUP));
  control(pid, '--instr=on');
  control(pid, '--zero');
  mark(`${target.name}: the counted window starts`);
  const callsBefore = await vendorCalls();
  const windowStart = performance.now();
  const failed = await step(`${target.name}: ${REQUESTS} counted`, REQUESTS / 250, () => send(url, WARMUP, REQUESTS));
  control(pid, '--dump');
  mark(`${target.name}: the counted window ends`);
  const windowSeconds = (performance.now() - windowStart) / 1000;
  const calls = callsBetween(callsBefore, await vendorCalls());
  // What the process does with no request (timers, probes, metrics), over as long as the window took: under valgrind a
  // window lasts ~50× longer than without, so this weighs ~50× more in it than in a bench run, and is taken out.
  control(pid, '--zero');
  await new Promise((resolve) => setTimeout(resolve, windowSeconds * 1000));
  control(pid, '--dump');
  gateway.child.kill('SIGKILL');
  // Each dump holds what ran since the last --zero, numbered in order (the process's own file at exit would hold the rest).
  const dumps = ownDumps()
    .filter((f) => /\.\d+$/.test(f))
    .sort((a, b) => Number(a.split('.').at(-1)) - Number(b.split('.').at(-1)));
  if (dumps.length !== 2) throw new Error(`callgrind wrote ${dumps.length} dumps for ${target.name} in ${OUT_DIR}, not 2`);
  const [window, idle] = dumps.map(dumpedInstructions) as [number, number];
  rows.push({
    gateway: target.name,
    instructions: Math.round((window - idle) / REQUESTS),
    'counted in the window': window,
    'idle over as long': idle,
    'window s': Number(windowSeconds.toFixed(1)),
    'vendor calls in the window': calls,
    'non-200 in the window': failed,
  });
}
upstreams.child.kill('SIGKILL');

const ours = rows[0]!.instructions;
const bestPeer = rows
  .slice(1)
  .filter((r) => !BOUNDS.has(r.gateway))
  .reduce<Row | undefined>((best, r) => (best === undefined || r.instructions < best.instructions ? r : best), undefined);
const table = shortTable(rows.map(({ gateway, instructions, ...rest }) => ({ gateway, [`instructions a ${scenario.unit}`]: instructions, ...rest })));
const TARGETS: Record<string, string> = {
  'dashboard-hot': ' (issue 21: ≤ 0.5× in CPU)',
  'dashboard-cold': " (issue 21: ≤ 0.45× Apollo's CPU)",
  'list-cold': " (issue 21: ≥ 3× Apollo's req/s)",
};
const target = TARGETS[scenarioName] ?? '';
const verdict = bestPeer === undefined ? '' : `ours / best peer (${bestPeer.gateway}): ${(ours / bestPeer.instructions).toFixed(2)}× the instructions a ${scenario.unit}${target}`;
console.log(`\n${table}\n${verdict}`);
const mayCall = (r: Row, i: number) => (i === 0 ? scenario.oursFromCache === false : !scenario.peersFromCache || BOUNDS.has(r.gateway));
const clean = rows.every((r, i) => r['non-200 in the window'] === 0 && (r['vendor calls in the window'] === '' || mayCall(r, i)));
if (!clean) console.log('not every request of a window was answered 200 from memory where it had to be: the counts above include misses or errors');

if (process.argv.includes('--write')) {
  const machine = `${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, node ${process.version}, ${execFileSync('valgrind', ['--version'], { encoding: 'utf8' }).trim()}`;
  appendFileSync(
    `${ROOT}bench/RESULTS.md`,
    `\n### Instructions a ${scenario.unit}, ${scenarioName} (${new Date().toISOString().slice(0, 10)})\n\n` +
      `\`BENCH_SCENARIO=${scenarioName} npx tsx bench/instructions.ts --write\` (${WARMUP} warm-up and ${REQUESTS} counted requests at ${CONNECTIONS} connections, each gateway under callgrind; ${machine})\n\n` +
      `${table}\n\n${verdict}\n`,
  );
}
process.exit(clean ? 0 : 1);
