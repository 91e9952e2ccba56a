import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

/** Child processes as a user or an operator runs them, with their output captured. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Env without anything that configures the server, so the parent's environment cannot leak in. */
export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(IDENTITY|ANALYTICS|NOTIFICATIONS|AUDIT|AUTH|REDIS|UPSTREAMS|REQUEST)_|^(PORT|HOST|NODE_ENV|LOG_LEVEL)$/.test(k)) env[k] = v;
  }
  return { ...env, ...extra };
}

export interface Child {
  child: ChildProcess;
  output(): string;
  /** Resolves with the match when the output matches; rejects if the process exits first. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

const running = new Set<ChildProcess>();

/** A TypeScript entry point under node (`--import tsx`), so the PID is the program's own. */
export function runScript(script: string, env: Record<string, string>): Child {
  return runCommand(process.execPath, ['--import', 'tsx', script], cleanEnv(env));
}

export function runCommand(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Child {
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  child.once('exit', () => running.delete(child));
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  return {
    child,
    output: () => output,
    waitFor: (pattern, timeoutMs = 20_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const m = output.match(pattern);
          if (m) {
            cleanup();
            resolve(m);
          }
        };
        const onExit = () => {
          check();
          cleanup();
          reject(new Error(`exited before ${pattern}; output:\n${output}`));
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out waiting for ${pattern}; output:\n${output}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          child.stdout!.off('data', check);
          child.stderr!.off('data', check);
          child.off('exit', onExit);
        };
        child.stdout!.on('data', check);
        child.stderr!.on('data', check);
        child.once('exit', onExit);
        check();
      }),
    stop: async (signal = 'SIGKILL') => {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const [code] = (await once(child, 'exit')) as [number | null];
      return code;
    },
  };
}

/** Kills whatever a test left running. */
export async function stopAll(): Promise<void> {
  await Promise.all(
    [...running].map(async (child) => {
      child.kill('SIGKILL');
      if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
    }),
  );
}

/** `npm run upstreams` as deployed: its own process on free ports; `env` holds the exports it prints. */
export async function startUpstreamsProcess(extra: Record<string, string> = {}): Promise<{ child: Child; env: Record<string, string> }> {
  const child = runScript('simulator/main.ts', { UPSTREAMS_PORT: '0', ...extra });
  await child.waitFor(/A user id to try/, 60_000);
  const env = Object.fromEntries([...child.output().matchAll(/(\w+_(?:URL|CLIENT_ID|CLIENT_SECRET|AUDIENCE|API_KEY|TOKEN))=(\S+)/g)].map((m) => [m[1]!, m[2]!]));
  return { child, env };
}

/** The server (`src/main.ts`) as a deployment runs it, once it listens (and, given REDIS_URL, has reached Redis). */
export async function startServerProcess(env: Record<string, string>): Promise<{ process: Child; url: string }> {
  // One process unless a suite asks for more (production's default is a worker per core).
  const process = runScript('src/main.ts', { PORT: '0', LOG_LEVEL: 'info', WORKERS: '1', ...env });
  const [, url] = await process.waitFor(/GraphQL endpoint: (\S+)/, 60_000);
  if (env.REDIS_URL) await process.waitFor(/Redis connected/, 30_000);
  return { process, url: url! };
}
