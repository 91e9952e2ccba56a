/**
 * What the bench scripts share: starting the simulated upstreams and a server
 * as child processes on loopback, the environment that points a server at the
 * upstreams, and reading a process's memory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

const children: ChildProcess[] = [];
process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));

export interface Started {
  child: ChildProcess;
  output: () => string;
}

/** How a script is started beyond its node flags: a program node runs under (valgrind, say), and how long it may take. */
export interface StartOptions {
  /** The command and its arguments that node's command line is appended to; the PID is then the launcher's (valgrind's is node's own). */
  launcher?: string[];
  /** @default 30 s */
  timeoutMs?: number;
}

/** Runs a script (TypeScript through tsx, JavaScript on plain node) until its output matches `ready`. */
export function start(script: string, env: Record<string, string>, ready: RegExp, nodeArgs: string[] = [], options: StartOptions = {}): Promise<Started> {
  // `node --import tsx`, not the tsx CLI (which runs the script in a second process): the PID must be the server's own.
  // Compiled JavaScript runs on plain node, as deployed; TypeScript through tsx (which adds ~100 MB of RSS).
  const loader = script.endsWith('.ts') ? ['--import', 'tsx'] : [];
  // A REDIS_URL in the bench's own environment (CI sets one) must not turn the L1-only mode into L1 + L2.
  // One server process unless a bench asks for workers (production's default would take every core).
  const childEnv: NodeJS.ProcessEnv = { WORKERS: '1', ...process.env, ...env };
  if (!('REDIS_URL' in env)) delete childEnv.REDIS_URL;
  const [command, ...launcherArgs] = [...(options.launcher ?? []), process.execPath];
  const child = spawn(command!, [...launcherArgs, ...nodeArgs, ...loader, script], { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start:\n${output}`)), options.timeoutMs ?? 30_000);
    const onData = (d: Buffer) => {
      output += d.toString();
      if (process.env.BENCH_OUTPUT) appendFileSync(process.env.BENCH_OUTPUT, d);
      if (ready.test(output)) {
        clearTimeout(timer);
        resolve({ child, output: () => output });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${script} exited ${code}:\n${output}`)));
  });
}

/** The simulated upstreams on free ports; `env` holds the *_URL and credential variables they printed for a server. */
export async function startUpstreams(settings: Record<string, string> = {}): Promise<Started & { env: Record<string, string> }> {
  const upstreams = await start('simulator/main.ts', { UPSTREAMS_PORT: '0', ...settings }, /A user id to try/);
  const env = Object.fromEntries([...upstreams.output().matchAll(/(\w+_(?:URL|CLIENT_ID|CLIENT_SECRET|AUDIENCE|API_KEY|TOKEN))=(\S+)/g)].map((m) => [m[1]!, m[2]!]));
  return { ...upstreams, env };
}

/** A token for the simulated identity vendor's own API (client credentials, from the variables it printed). */
export async function identityToken(env: Record<string, string>): Promise<string> {
  const res = await fetch(`${env.IDENTITY_URL}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ grant_type: 'client_credentials', client_id: env.IDENTITY_CLIENT_ID, client_secret: env.IDENTITY_CLIENT_SECRET, audience: env.IDENTITY_AUDIENCE }),
  });
  return ((await res.json()) as { access_token: string }).access_token;
}

/** At least `count` user ids (whole pages of 100), in identity's own listing order. */
export async function simulatedUserIds(env: Record<string, string>, count: number): Promise<string[]> {
  const token = await identityToken(env);
  const ids: string[] = [];
  for (let page = 0; ids.length < count; page++) {
    const res = await fetch(`${env.IDENTITY_URL}/api/v2/users?page=${page}&per_page=100`, { headers: { authorization: `Bearer ${token}` } });
    const users = (await res.json()) as { user_id: string }[];
    if (users.length === 0) break;
    ids.push(...users.map((u) => u.user_id));
  }
  return ids;
}

/**
 * The simulated vendors have no rate limit, so the server is told so, as a deployment sets
 * <SOURCE>_RATE_LIMIT_PER_SEC below its vendors' real limits; otherwise our own bucket is what gets measured.
 * Likewise the per-caller limit: the whole load comes with one token.
 */
export const UNLIMITED: Record<string, string> = Object.fromEntries([
  ...['IDENTITY', 'ANALYTICS', 'NOTIFICATIONS', 'AUDIT'].flatMap((s) => [
    [`${s}_RATE_LIMIT_PER_SEC`, '100000'],
    [`${s}_RATE_LIMIT_BURST`, '1000'],
  ]),
  ['CALLER_RATE_LIMIT_PER_SEC', '100000'],
  ['CALLER_RATE_LIMIT_BURST', '100000'],
]);

/** A memory line of /proc/<pid>/status in MB: VmRSS (now) or VmHWM (peak). */
export function memoryMb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${field}:`))!;
  return Number(line.split(/\s+/)[1]) / 1024;
}

/** node's flags in `npm run start:prod` (package.json): the heap cap and young generation a deployment runs with. */
export function startProdNodeArgs(): string[] {
  const { scripts } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };
  return scripts['start:prod']!.replace(/^(exec\s+)?node\s+/, '')
    .replace(/\s*dist\/main\.js.*$/, '')
    .split(' ')
    .filter(Boolean);
}

/** Our server's node flags in a bench: BENCH_NODE_ARGS when set (e.g. to add `--trace-gc` with BENCH_OUTPUT), else start:prod's. */
export function ourNodeArgs(): string[] {
  const wanted = process.env.BENCH_NODE_ARGS;
  return wanted === undefined ? startProdNodeArgs() : wanted.split(' ').filter(Boolean);
}

/** A process and its children (a WORKERS=N primary's workers): the whole server is counted. */
export function processTree(pid: number): number[] {
  const children = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1]!.split(' ')[1] === String(pid);
      } catch {
        return false;
      }
    })
    .map(Number);
  return [pid, ...children];
}

/** utime + stime of a process and its children, in ms. */
export function cpuMs(pid: number): number {
  return processTree(pid).reduce((sum, p) => {
    const fields = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return sum + ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // clock ticks at USER_HZ = 100
  }, 0);
}

/** Starts a new peak for `peakRssMb`: the kernel's VmHWM of each process of the tree is reset to its current RSS. */
export function resetPeakRss(pid: number): void {
  for (const p of processTree(pid)) {
    try {
      writeFileSync(`/proc/${p}/clear_refs`, '5');
    } catch {
      // Not ours to reset (another user's process): its peak then runs from its start.
    }
  }
}

/** Peak RSS of a process and its children, summed (an upper bound: their peaks need not coincide). */
export function peakRssMb(pid: number): number {
  return Math.round(processTree(pid).reduce((sum, p) => sum + memoryMb(p, 'VmHWM'), 0));
}
