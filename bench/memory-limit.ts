/**
 * The built server (start:prod's flags, WORKERS=1) in a cgroup v1 memory cgroup of each limit in MEM_LIMITS_MIB,
 * under cold 50-user lists (a new page each request) at MEM_CONNECTIONS for MEM_SECONDS: whether the kernel killed it,
 * what it answered, and the cgroup's own peak (what the kernel counts, page cache it can reclaim included).
 * Root and cgroup v1's memory controller at /sys/fs/cgroup/memory are needed.
 *
 *   npm run build && npx tsx bench/memory-limit.ts      # MEM_LIMITS_MIB=1024,110,96 MEM_CONNECTIONS=500 MEM_SECONDS=20
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import autocannon from 'autocannon';
import { SignJWT } from 'jose';
import { Dataset } from '../simulator/dataset.js';
import { start, startProdNodeArgs, startUpstreams, UNLIMITED } from './harness.js';

const LIMITS = (process.env.MEM_LIMITS_MIB ?? '1024,110,96').split(',').map(Number);
const CONNECTIONS = Number(process.env.MEM_CONNECTIONS ?? 500);
const SECONDS = Number(process.env.MEM_SECONDS ?? 20);
const USERS = 100_000;
const SECRET = 'memory-limit-bench-secret-0123456789abcdef';
const LIST = `query List($ids: [ID!]!) { users(ids: $ids) { name metrics { pageViews } unreadNotificationCount } }`;
const MiB = 1024 * 1024;

const upstreams = await startUpstreams({ UPSTREAMS_USERS: String(USERS) });
const seeded = new Dataset(42, USERS).users.map((u) => u.user_id);
let cursor = 2000;
const token = await new SignJWT({ scope: 'admin' }).setProtectedHeader({ alg: 'HS256' }).setSubject('bench').setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));

const rows: string[] = [];
for (const limit of LIMITS) {
  const cgroup = `/sys/fs/cgroup/memory/gateway-bench-${process.pid}-${limit}`;
  if (!existsSync(cgroup)) mkdirSync(cgroup);
  writeFileSync(`${cgroup}/memory.limit_in_bytes`, String(limit * MiB));
  const server = await start(
    'dist/main.js',
    { ...upstreams.env, ...UNLIMITED, AUTH_JWT_SECRET: SECRET, NODE_ENV: 'production', PORT: '0', WORKERS: '1', LOG_LEVEL: 'warn' },
    /GraphQL endpoint: (\S+)/,
    startProdNodeArgs(),
    { launcher: ['sh', '-c', `echo $$ > ${cgroup}/cgroup.procs && exec "$@"`, 'sh'] },
  );
  const url = /GraphQL endpoint: (\S+)/.exec(server.output())![1]!;
  let killedBy: string | null = null;
  server.child.once('exit', (code, signal) => (killedBy = signal ?? `exit ${code}`));
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: SECONDS,
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    requests: [{ setupRequest: (req) => ({ ...req, body: JSON.stringify({ query: LIST, variables: { ids: seeded.slice(cursor, (cursor += 50)) } }) }) }],
  });
  const peak = Number(readFileSync(`${cgroup}/memory.max_usage_in_bytes`, 'utf8')) / MiB;
  const answered = (code: string) => (result.statusCodeStats as Record<string, { count: number } | undefined>)[code]?.count ?? 0;
  const outcome = killedBy === null ? 'alive' : `killed (${killedBy})`;
  server.child.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 500));
  rmdirSync(cgroup);
  rows.push(`| ${limit} MiB | ${outcome} | ${answered('200')} | ${answered('503')} | ${result.errors} | ${peak.toFixed(0)} MiB |`);
}
console.log(`\ncold 50-user lists, ${CONNECTIONS} connections, ${SECONDS} s, one worker (start:prod's flags)\n`);
console.log('| memory limit | server | 200 | 503 | connection errors | cgroup peak |\n|---|---|---|---|---|---|');
console.log(rows.join('\n'));
process.exit(0);
