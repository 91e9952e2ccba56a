/**
 * `npx tsx bench/inflight-heap.ts`: what a cold dashboard holds in the heap
 * while it waits on its vendors. Every scavenge copies what is alive in the
 * young generation, and at 50 connections that is mostly the requests in
 * flight (a cold request lives about as long as the time between two
 * scavenges), so these bytes, not the garbage, set what a scavenge costs,
 * and those still waiting at the next one are promoted, which brings the
 * mark-compacts (bench/RESULTS.md, sessions 26 and 27).
 *
 * Ours runs as `start:prod` runs it (WORKERS=1, L1 only) with
 * `--heapsnapshot-signal=SIGUSR2`. After a warm-up of cold dashboards (so what
 * is made once is made), one heap snapshot is taken idle; then the vendors
 * are slowed to 8 s (the admin endpoint's latency fault), BENCH_INFLIGHT
 * (default 100) dashboards of new users are sent, a second snapshot is taken
 * while they all wait (none may have been answered before it), and the
 * vendors are let go (every answer must come back whole). The difference
 * between the two snapshots, divided by the requests, is printed by kind of
 * object and, for functions and suspended async functions, by where in the
 * source they were made (V8's own by what they are for), with the vendor
 * calls in flight a request that the bytes go with.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import { SignJWT } from 'jose';
import { Dataset } from '../simulator/dataset.js';
import { ourNodeArgs, ROOT, start, startUpstreams, UNLIMITED } from './harness.js';

const IN_FLIGHT = Number(process.env.BENCH_INFLIGHT ?? 100);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 3000);
const SECRET = 'bench-secret-bench-secret-bench-secret!';
const DASHBOARD = `query Dashboard($id: ID!) { user(id: $id) { id name avatarUrl metrics { pageViews sessions conversionRate } unreadNotificationCount notifications(first: 5) { totalCount edges { node { id title read createdAt } } } } }`;
const VENDOR_WAIT_MS = 8000;

execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' });
const users = WARMUP + IN_FLIGHT + 10;
const upstreams = await startUpstreams({ UPSTREAMS_USERS: String(users) });
const ids = new Dataset(42, users).users.map((u) => u.user_id);
const dir = mkdtempSync(`${os.tmpdir()}/inflight-heap-`);
const waitMs = String(VENDOR_WAIT_MS * 4);
const server = await start(
  `${ROOT}dist/main.js`,
  {
    ...upstreams.env,
    ...UNLIMITED,
    PORT: '0',
    AUTH_JWT_SECRET: SECRET,
    LOG_LEVEL: 'warn',
    NODE_ENV: 'production',
    CACHE_ENABLED: 'true',
    // The vendors' 8 s must not time the requests out.
    REQUEST_DEADLINE_MS: waitMs,
    IDENTITY_TIMEOUT_MS: waitMs,
    ANALYTICS_TIMEOUT_MS: waitMs,
    NOTIFICATIONS_TIMEOUT_MS: waitMs,
    LOAD_SHED_MAX_EVENT_LOOP_DELAY_MS: '0',
    LOAD_QUEUE_MAX_WAIT_MS: waitMs,
  },
  /GraphQL endpoint: (\S+)/,
  [...ourNodeArgs(), '--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${dir}`],
);
const url = server.output().match(/GraphQL endpoint: (\S+)/)![1]!;
const pid = server.child.pid!;
const token = await new SignJWT({ scope: 'admin' }).setProtectedHeader({ alg: 'HS256' }).setSubject('bench').setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));

let next = 0;
const dashboard = async (): Promise<string> => {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: DASHBOARD, variables: { id: ids[next++] } }),
  });
  const body = await res.text();
  if (res.status !== 200 || body.includes('"errors"')) throw new Error(`a dashboard failed: ${res.status} ${body.slice(0, 300)}`);
  return body;
};
const slowVendors = (latencyMs: number) =>
  Promise.all(
    ['IDENTITY_URL', 'ANALYTICS_URL', 'NOTIFICATIONS_URL'].map((k) =>
      fetch(`${upstreams.env[k]}/__admin/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ latencyMs }) }),
    ),
  );
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Signals the server and waits for its snapshot file to be written whole. */
async function snapshot(): Promise<string> {
  const before = new Set(readdirSync(dir));
  process.kill(pid, 'SIGUSR2');
  for (;;) {
    await sleep(500);
    const file = readdirSync(dir).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    if (!file) continue;
    for (let size = -1; ;) {
      await sleep(1000);
      const now = statSync(`${dir}/${file}`).size;
      if (now === size) return `${dir}/${file}`;
      size = now;
    }
  }
}

for (let sent = 0; sent < WARMUP; sent += 20) await Promise.all(Array.from({ length: 20 }, dashboard));
await sleep(2000);
const idle = await snapshot();
await slowVendors(VENDOR_WAIT_MS);
let answered = 0;
const waiting = Array.from({ length: IN_FLIGHT }, () => dashboard().finally(() => answered++));
await sleep(1500);
const busy = await snapshot();
// A dashboard answered before the snapshot was not held in it: the difference would read low, or below nothing.
if (answered > 0) {
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`${answered} of ${IN_FLIGHT} dashboards were answered before the snapshot: the vendors' latency fault did not hold them`);
}
await slowVendors(0);
await Promise.all(waiting);

interface Tally {
  count: number;
  bytes: number;
}

/** A snapshot's objects by kind, and its functions and suspended async functions by where they were made. */
function tally(file: string): { byKind: Map<string, Tally>; bySite: Map<string, Tally> } {
  const s = JSON.parse(readFileSync(file, 'utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } };
    nodes: number[];
    edges: number[];
    strings: string[];
    locations: number[];
  };
  const { meta } = s.snapshot;
  const nf = meta.node_fields.length;
  const ef = meta.edge_fields.length;
  const [TYPE, NAME, SIZE, EDGES] = ['type', 'name', 'self_size', 'edge_count'].map((f) => meta.node_fields.indexOf(f)) as [number, number, number, number];
  const [ETYPE, ENAME, ETO] = ['type', 'name_or_index', 'to_node'].map((f) => meta.edge_fields.indexOf(f)) as [number, number, number];
  const nodeCount = s.nodes.length / nf;
  const firstEdge = new Uint32Array(nodeCount + 1);
  for (let n = 0, e = 0; n < nodeCount; n++) {
    firstEdge[n] = e;
    e += s.nodes[n * nf + EDGES]! * ef;
  }
  firstEdge[nodeCount] = s.edges.length;
  const line = new Map<number, number>();
  for (let i = 0; i < s.locations.length; i += 4) line.set(s.locations[i]! / nf, s.locations[i + 2]! + 1);
  const edgeTo = (n: number, name: string): number => {
    for (let e = firstEdge[n]!; e < firstEdge[n + 1]!; e += ef) {
      const type = meta.edge_types[0][s.edges[e + ETYPE]!];
      if (type !== 'element' && type !== 'hidden' && s.strings[s.edges[e + ENAME]!] === name) return s.edges[e + ETO]! / nf;
    }
    return -1;
  };
  const nameOf = (n: number) => s.strings[s.nodes[n * nf + NAME]!]!;
  /**
   * What one of V8's own functions is for, told by what its context holds: an await's resume functions (two for each
   * suspended async function) hold its generator; a promise's resolve and reject functions hold the promise.
   */
  const builtinKind = (fn: number): string => {
    const context = edgeTo(fn, 'context');
    if (context < 0) return 'builtin';
    for (let e = firstEdge[context]!; e < firstEdge[context + 1]!; e += ef) {
      const to = s.edges[e + ETO]! / nf;
      if (meta.node_types[0][s.nodes[to * nf + TYPE]!] !== 'object') continue;
      if (nameOf(to) === 'Generator') return "builtin (an await's resume)";
      if (nameOf(to) === 'Promise') return "builtin (a promise's resolve or reject)";
    }
    return 'builtin';
  };
  /** The file and line a function was made at, or for V8's own what it is for. */
  const site = (fn: number): string => {
    const shared = edgeTo(fn, 'shared');
    const script = shared < 0 ? -1 : edgeTo(shared, 'script_or_debug_info');
    const file =
      script < 0
        ? builtinKind(fn)
        : nameOf(script)
            .replace(/^.*node_modules\//, '')
            .replace(`file://${ROOT}`, '');
    const at = line.get(fn);
    return `${file}${at ? `:${at}` : ''}${nameOf(fn) ? ` ${nameOf(fn)}` : ''}`;
  };
  const add = (map: Map<string, Tally>, key: string, bytes: number) => {
    const t = map.get(key) ?? { count: 0, bytes: 0 };
    t.count++;
    t.bytes += bytes;
    map.set(key, t);
  };
  const byKind = new Map<string, Tally>();
  const bySite = new Map<string, Tally>();
  for (let n = 0; n < nodeCount; n++) {
    const type = meta.node_types[0][s.nodes[n * nf + TYPE]!]!;
    const bytes = s.nodes[n * nf + SIZE]!;
    const name = type.includes('string') ? '' : nameOf(n).slice(0, 50);
    add(byKind, `${type} ${name}`, bytes);
    if (type === 'closure') add(bySite, `function ${site(n)}`, bytes);
    else if (type === 'object' && name === 'Generator') {
      const fn = edgeTo(n, 'function');
      add(bySite, `suspended ${fn < 0 ? '?' : site(fn)}`, bytes);
    }
  }
  return { byKind, bySite };
}

function perRequest(before: Map<string, Tally>, after: Map<string, Tally>): [string, number, number][] {
  return [...after]
    .map(([k, t]): [string, number, number] => [k, (t.count - (before.get(k)?.count ?? 0)) / IN_FLIGHT, (t.bytes - (before.get(k)?.bytes ?? 0)) / IN_FLIGHT])
    .filter(([, count]) => count >= 0.5);
}

const a = tally(idle);
const b = tally(busy);
rmSync(dir, { recursive: true, force: true });
const kinds = perRequest(a.byKind, b.byKind).sort((x, y) => y[2] - x[2]);
const total = [...b.byKind.values()].reduce((s, t) => s + t.bytes, 0) - [...a.byKind.values()].reduce((s, t) => s + t.bytes, 0);
console.log(`\nheld by one cold dashboard waiting on its vendors (${IN_FLIGHT} in flight, after ${WARMUP} cold dashboards): ${Math.round(total / IN_FLIGHT)} bytes\n`);
console.log('bytes   count  kind');
for (const [k, count, bytes] of kinds.slice(0, 25)) console.log(`${bytes.toFixed(0).padStart(6)} ${count.toFixed(1).padStart(6)}  ${k}`);
const sites = perRequest(a.bySite, b.bySite).sort((x, y) => y[1] - x[1]);
const functions = sites.filter(([k]) => k.startsWith('function')).reduce((s, r) => s + r[1], 0);
const suspended = sites.filter(([k]) => k.startsWith('suspended')).reduce((s, r) => s + r[1], 0);
// One suspended `exchange` per HTTP call to a vendor in flight: what a request holds grows with them (~9 KB each, session 26).
const exchanges = sites.find(([k]) => k.startsWith('suspended dist/sources/upstream-http.js') && k.endsWith(' exchange'))?.[1] ?? 0;
console.log(
  `\nfunctions made and held: ${functions.toFixed(1)} a request; async functions suspended: ${suspended.toFixed(1)}; vendor calls in flight: ${exchanges.toFixed(1)}\n\ncount  where`,
);
for (const [k, count] of sites.slice(0, Number(process.env.BENCH_SITES ?? 40))) console.log(`${count.toFixed(1).padStart(5)}  ${k}`);
process.exit(0);
