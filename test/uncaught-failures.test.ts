import { once } from 'node:events';
import { SignJWT } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanEnv, runCommand, startUpstreamsProcess, stopAll, type Child } from './helpers/processes.js';

/**
 * What nothing caught: a throw in a callback, a promise rejected with no handler (a bug, ours or a library's). Before,
 * Node's default: a bare stack on stderr, exit at once, every request in flight cut. Now one fatal JSON line with the
 * stack, the requests in flight answered as on SIGTERM, then exit code 1 (a supervisor, or the cluster primary,
 * starts another). The server runs as deployed, with the failure planted by a preloaded module (test/fixtures/planted-failure.ts).
 */
const SECRET = 'uncaught-failures-test-secret-0123456789abcdef';
afterAll(stopAll);

/** The fixture's command line: the server, with the failure module preloaded (into every worker too). */
const PLANTED = ['--import', 'tsx', '--import', './test/fixtures/planted-failure.ts', 'src/main.ts'];

/**
 * A dashboard kept in flight (analytics answers after 800 ms), then the planted failure set off in `server`: the
 * dashboard's answer and the process's exit code.
 */
async function failureWithRequestInFlight(server: Child, url: string, analyticsUrl: string, userId: string) {
  await fetch(`${analyticsUrl}/__admin/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ latencyMs: 800 }) });
  const token = await new SignJWT({ scope: 'admin' }).setProtectedHeader({ alg: 'HS256' }).setSubject(userId).setExpirationTime('5m').sign(new TextEncoder().encode(SECRET));
  const inFlight = fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: '{ viewer { name metrics { pageViews } } }' }),
  }).then(async (res) => ({ status: res.status, body: (await res.json()) as { data?: { viewer?: { metrics?: { pageViews?: number } } }; errors?: unknown[] } }));
  await new Promise((r) => setTimeout(r, 200));
  const exited = once(server.child, 'exit');
  server.child.kill('SIGUSR2');
  const answer = await inFlight;
  const [code] = (await exited) as [number | null];
  return { answer, code };
}

/** The fatal-level JSON lines a process wrote. */
function fatalLines(server: Child): { msg: string; origin: string; err: { message: string; stack: string } }[] {
  return server
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{') && l.includes('"level":60'))
    .map((l) => JSON.parse(l) as { msg: string; origin: string; err: { message: string; stack: string } });
}

async function serverWithPlantedFailure(kind: 'exception' | 'rejection'): Promise<{ server: Child; url: string; vendors: Record<string, string>; userId: string }> {
  const server = runCommand(process.execPath, PLANTED, cleanEnv({ PORT: '0', WORKERS: '1', LOG_LEVEL: 'info', AUTH_JWT_SECRET: SECRET, PLANTED_FAILURE: kind }));
  const [, url] = (await server.waitFor(/GraphQL endpoint: (\S+)/, 60_000)) as [string, string];
  await server.waitFor(/A user id to try: (\S+)/);
  const vendors = Object.fromEntries([...server.output().matchAll(/^ {2}(identity|analytics|notifications|audit)\s+(\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
  const userId = /A user id to try: (\S+)/.exec(server.output())![1]!;
  return { server, url, vendors, userId };
}

describe('an uncaught failure', () => {
  for (const kind of ['exception', 'rejection'] as const) {
    it(`(${kind}): one fatal line with its stack; the request in flight is answered; exit code 1`, async () => {
      const { server, url, vendors, userId } = await serverWithPlantedFailure(kind);
      const { answer, code } = await failureWithRequestInFlight(server, url, vendors.analytics!, userId);
      expect(answer.status).toBe(200);
      expect(answer.body.errors).toBeUndefined();
      expect(answer.body.data?.viewer?.metrics?.pageViews).toEqual(expect.any(Number));
      expect(code).toBe(1);

      const fatal = fatalLines(server);
      expect(fatal).toHaveLength(1);
      expect(fatal[0]!.origin).toBe(kind === 'rejection' ? 'unhandledRejection' : 'uncaughtException');
      expect(fatal[0]!.err.message).toBe(`planted ${kind}`);
      expect(fatal[0]!.err.stack).toMatch(/planted-failure\.ts/);
      expect(fatal[0]!.msg).toMatch(
        kind === 'rejection' ? /^A promise was rejected with nothing to handle it: this process stops/ : /^An exception was thrown with nothing to catch it: this process stops/,
      );
    }, 60_000);
  }
});

describe("an uncaught failure in the cluster's primary (WORKERS=2)", () => {
  it('one fatal line; every worker drains, the request in flight answered; exit code 1', async () => {
    const { child: vendorsProcess, env: vendors } = await startUpstreamsProcess();
    const userId = /A user id to try: (\S+)/.exec(vendorsProcess.output())![1]!;
    const server = runCommand(process.execPath, PLANTED, cleanEnv({ ...vendors, PORT: '0', WORKERS: '2', LOG_LEVEL: 'info', AUTH_JWT_SECRET: SECRET }));
    const [, url] = (await server.waitFor(/GraphQL endpoint: (\S+)/, 60_000)) as [string, string];
    await server.waitFor(/Worker 0 listening[\s\S]*Worker 1 listening|Worker 1 listening[\s\S]*Worker 0 listening/, 60_000);
    const { answer, code } = await failureWithRequestInFlight(server, url, vendors.ANALYTICS_URL!, userId);
    expect(answer.status).toBe(200);
    expect(answer.body.data?.viewer?.metrics?.pageViews).toEqual(expect.any(Number));
    expect(code).toBe(1);
    const fatal = fatalLines(server);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]!.msg).toMatch(/An exception was thrown with nothing to catch it in the primary: every worker drains/);
    expect(server.output()).toMatch(/All workers stopped/);
  }, 60_000);
});
