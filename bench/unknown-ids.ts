/**
 * `npx tsx bench/unknown-ids.ts [entry] [ids]`: what a client asking for
 * unknown ids does to the heap of a server run as `npm run start:prod` runs
 * it (160 MB heap cap, no Redis). Each id becomes a "no such entity" entry in
 * L1; the run sends `users(ids)` queries of 500 fresh unknown ids and prints
 * heap used, RSS and peak RSS every 50,000 ids, or how the server failed.
 *
 * entry: the server's compiled entry (default dist/main.js; `npm run build`
 * first). ids: how many unknown ids to send (default 400,000). The simulated
 * upstreams and the server use ports 4100–4103 and 4301. Loopback only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { SignJWT } from 'jose';

const ROOT = new URL('..', import.meta.url).pathname;
const entry = process.argv[2] ?? 'dist/main.js';
const total = Number(process.argv[3] ?? 400_000);
const PER_QUERY = 500;
const PORT = 4301;
const SECRET = 'unknown-ids-bench-secret-0123456789abcdef';

function waitFor(child: ChildProcess, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes(text) && resolve());
    child.once('exit', (code) => reject(new Error(`exited (${code}) before printing "${text}"`)));
  });
}

/** A line of /proc/<pid>/status in MB (VmRSS, VmHWM). */
function procMb(pid: number, field: string): number {
  const match = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`${field}:\\s+(\\d+)`));
  return match ? Number(match[1]) / 1024 : NaN;
}

async function heapUsedMb(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${PORT}/metrics`)).text();
  const match = text.match(/^nodejs_heap_size_used_bytes (\S+)/m);
  return match ? Number(match[1]) / 2 ** 20 : NaN;
}

const upstreams = spawn(process.execPath, ['--import', 'tsx', 'src/upstreams/main.ts'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
await waitFor(upstreams, 'npm start');

const env: NodeJS.ProcessEnv = {
  ...process.env,
  IDENTITY_URL: 'http://127.0.0.1:4100',
  IDENTITY_CLIENT_ID: 'dev-client',
  IDENTITY_CLIENT_SECRET: 'dev-client-secret',
  IDENTITY_AUDIENCE: 'https://identity.simulated/api/v2/',
  ANALYTICS_URL: 'http://127.0.0.1:4101',
  ANALYTICS_API_KEY: 'dev-analytics-key',
  NOTIFICATIONS_URL: 'http://127.0.0.1:4102',
  NOTIFICATIONS_TOKEN: 'dev-notifications-token',
  AUDIT_URL: 'http://127.0.0.1:4103',
  AUDIT_API_KEY: 'dev-audit-key',
  AUTH_JWT_SECRET: SECRET,
  PORT: String(PORT),
  LOG_LEVEL: 'warn',
  // What a client can send is bounded by these in a deployment; here they would only slow the run down.
  CALLER_RATE_LIMIT_PER_SEC: '100000',
  IDENTITY_RATE_LIMIT_PER_SEC: '100000',
};
delete env.REDIS_URL;
const server = spawn(process.execPath, ['--max-old-space-size=160', '--min-semi-space-size=16', entry], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
let serverErrors = '';
server.stderr!.on('data', (chunk: Buffer) => (serverErrors += chunk.toString()));
await waitFor(server, 'GraphQL endpoint');

const token = await new SignJWT({ sub: 'unknown-ids-bench', scope: 'admin' })
  .setProtectedHeader({ alg: 'HS256' })
  .setExpirationTime('1h')
  .sign(new TextEncoder().encode(SECRET));

const pid = server.pid!;
const startedAt = Date.now();
let sent = 0;
let non200 = 0;
try {
  while (sent < total) {
    const ids = Array.from({ length: PER_QUERY }, (_, i) => `nobody-${(sent + i).toString(36).padStart(10, '0')}`);
    const res = await fetch(`http://127.0.0.1:${PORT}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: 'query($ids: [ID!]!) { users(ids: $ids) { id } }', variables: { ids } }),
    });
    if (res.status !== 200) non200++;
    await res.text();
    sent += PER_QUERY;
    if (sent % 50_000 === 0) {
      const seconds = ((Date.now() - startedAt) / 1000).toFixed(0);
      console.log(`${sent} ids: heap used ${(await heapUsedMb()).toFixed(0)} MB, RSS ${procMb(pid, 'VmRSS').toFixed(0)} MB, peak RSS ${procMb(pid, 'VmHWM').toFixed(0)} MB (${seconds} s)`);
    }
  }
  console.log(`done: ${sent} unknown ids, ${non200} answers not 200`);
} catch (error) {
  await new Promise((resolve) => setTimeout(resolve, 500));
  const fatal = serverErrors.split('\n').find((line) => /out of memory|FATAL/i.test(line)) ?? '(no fatal error printed)';
  console.log(`the server stopped answering after ${sent} ids (${(error as Error & { cause?: { code?: string } }).cause?.code ?? (error as Error).message}); exit code ${server.exitCode}: ${fatal}`);
}
server.kill();
upstreams.kill();
process.exit(0);
