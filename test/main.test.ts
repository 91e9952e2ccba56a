import { networkInterfaces } from 'node:os';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanEnv, runCommand, runScript, startUpstreamsProcess, stopAll } from './helpers/processes.js';

/**
 * The entry points as a user runs them: `npm start` (src/main.ts) and
 * `npm run upstreams` (simulator/main.ts), as child processes.
 */
afterEach(stopAll);

const run = runScript;

async function query(url: string, token: string, q: string) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ query: q }) });
  return { status: res.status, body: (await res.json()) as { data?: Record<string, any>; errors?: unknown[] } };
}

describe('npm start with nothing configured', () => {
  it('runs the simulated upstreams in process, says so, prints a working admin token and the GraphiQL URL; SIGTERM exits 0', async () => {
    const app = run('src/main.ts', { PORT: '0' });
    const [, url] = await app.waitFor(/GraphQL endpoint: (http:\/\/127\.0\.0\.1:\d+\/graphql)/, 60_000);
    const [token] = await app.waitFor(/eyJ[\w-]+\.[\w-]+\.[\w-]+/);
    expect(app.output()).toMatch(/SIMULATED upstreams/);
    // Honest about where it listens, and where to go next.
    expect(app.output()).not.toMatch(/every interface/);
    expect(app.output()).toMatch(/Status page: http:\/\/127\.0\.0\.1:\d+\/status#token=eyJ/);
    expect(app.output()).toMatch(/A user id to try: auth0\|/);
    // No Redis in the demo: it says what that means for writes.
    await app.waitFor(/Deliveries are not durable/);
    await app.waitFor(/Cache: L1 in process only/);

    const res = await query(url!, token!, '{ serverInfo { simulatedUpstreams } viewer { id name unreadNotificationCount } userList(first: 2) { totalCount } }');
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data!.serverInfo.simulatedUpstreams).toBe(true);
    expect(res.body.data!.userList.totalCount).toBe(1200);
    expect(res.body.data!.viewer.unreadNotificationCount).toBeTypeOf('number');

    // GraphiQL opens with the example query and the token in its headers.
    const page = await fetch(url!, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('query Dashboard');
    expect(html).toContain(token!);

    app.child.kill('SIGTERM');
    const [code] = (await once(app.child, 'exit')) as [number | null];
    expect(code).toBe(0);
  });
});

describe('npm start as typed', () => {
  it('a signal to npm reaches the server: SIGTERM to `npm start` stops it, nothing is left listening', async () => {
    const npm = runCommand('npm', ['start'], cleanEnv({ PORT: '0' }));
    const [, url] = await npm.waitFor(/GraphQL endpoint: (http:\/\/127\.0\.0\.1:\d+\/graphql)/, 60_000);
    const health = url!.replace('/graphql', '/healthz');
    expect((await fetch(health)).status).toBe(200);
    npm.child.kill('SIGTERM');
    await npm.waitFor(/shutting down/);
    let listening = true;
    for (let i = 0; i < 50 && listening; i++) {
      await new Promise((r) => setTimeout(r, 100));
      listening = await fetch(health).then(
        () => true,
        () => false,
      );
    }
    expect(listening).toBe(false);
  });
});

describe('graceful shutdown', () => {
  // SIGHUP too: the terminal that ran `npm start` closing, or a supervisor's hang-up, killed it at once before.
  it.each(['SIGTERM', 'SIGHUP'] as const)('on %s: stops accepting, finishes the request in flight, closes everything, exits 0', async (signal) => {
    const app = run('src/main.ts', { PORT: '0', SHUTDOWN_GRACE_MS: '8000' });
    const [, url] = await app.waitFor(/GraphQL endpoint: (http:\/\/127\.0\.0\.1:\d+\/graphql)/, 60_000);
    const [token] = await app.waitFor(/eyJ[\w-]+\.[\w-]+\.[\w-]+/);
    const [, identityUrl] = await app.waitFor(/identity\s+(http:\/\/\S+)/);
    // The request in flight takes 0.7 s upstream (within the default per-attempt timeout).
    await fetch(`${identityUrl}/__admin/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ latencyMs: 700 }) });
    const inFlight = query(url!, token!, '{ viewer { id name } }');
    await new Promise((r) => setTimeout(r, 300));
    app.child.kill(signal);
    await app.waitFor(new RegExp(`"signal":"${signal}"[^\\n]*shutting down`));
    // No new connections once shutdown has begun.
    await expect(fetch(url!, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query":"{ __typename }"}' })).rejects.toThrow();
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data!.viewer.name).toBeTypeOf('string');
    const [code] = (await once(app.child, 'exit')) as [number | null];
    expect(code).toBe(0);
  });
});

describe('refusing to start', () => {
  it.each([
    ['some upstreams configured', { ANALYTICS_URL: 'http://127.0.0.1:1', ANALYTICS_API_KEY: 'k' }, /Missing: IDENTITY_URL.*NOTIFICATIONS_URL/],
    ['production without upstreams', { NODE_ENV: 'production' }, /NODE_ENV=production never runs on simulated upstreams/],
    ['a URL that does not parse', { IDENTITY_URL: 'identity.example.com' }, /IDENTITY_URL must be an http\(s\) URL/],
    ['a negative timeout', { ANALYTICS_TIMEOUT_MS: '-1' }, /ANALYTICS_TIMEOUT_MS must be at least 1/],
  ])('%s: exits 1 naming what is wrong', async (_name, env, message) => {
    const app = run('src/main.ts', { PORT: '0', ...env });
    const [code] = (await once(app.child, 'exit')) as [number | null];
    expect(code).toBe(1);
    expect(app.output()).toMatch(message);
    expect(app.output()).not.toMatch(/GraphQL endpoint/);
  });
});

describe('deployed against upstreams in another process (npm run upstreams)', () => {
  it('serves the read contract from the configured URLs with their credentials', async () => {
    const { child: upstreams, env: exports } = await startUpstreamsProcess();
    expect(Object.keys(exports)).toHaveLength(10);

    const secret = 'a-deployment-secret-of-32-characters-or-more';
    const app = run('src/main.ts', { ...exports, PORT: '0', AUTH_JWT_SECRET: secret, NODE_ENV: 'production', LOG_LEVEL: 'warn', WORKERS: '1' });
    const [, url] = await app.waitFor(/GraphQL endpoint: (http:\/\/[\d.]+:\d+\/graphql)/, 60_000);
    // GraphiQL is off in production: the banner does not invite anyone to it, and says how to get a token for the status page.
    expect(app.output()).not.toMatch(/GraphiQL/);
    expect(app.output()).toMatch(/listening on every interface \(HOST=::, IPv6 and IPv4, port \d+\)/);
    expect(app.output()).toMatch(/Status page: \S+\/status {2}\(an admin token: npm run token -- --sub <id> --admin\)/);
    expect(app.output()).not.toMatch(/SIMULATED/);
    expect(app.output()).not.toMatch(/eyJ/); // no demo token when the secret is configured

    const { SignJWT } = await import('jose');
    const userId = upstreams.output().match(/A user id to try: (\S+)/)![1]!;
    const token = await new SignJWT({ scope: 'admin' }).setProtectedHeader({ alg: 'HS256' }).setSubject(userId).setExpirationTime('5m').sign(new TextEncoder().encode(secret));
    const res = await query(url!, token, `{ serverInfo { simulatedUpstreams } viewer { id email metrics { pageViews } notifications(first: 1) { totalCount } } }`);
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data!.serverInfo.simulatedUpstreams).toBe(false);
    expect(res.body.data!.viewer.id).toBe(userId);
    const stats = (await (await fetch(`${exports.IDENTITY_URL}/__admin/stats`)).json()) as { routes: Record<string, { calls: number }> };
    expect(stats.routes['POST /oauth/token']!.calls).toBe(1);
    // Every interface means IPv6 too (this machine has it): before, 0.0.0.0 refused [::1].
    const port = new URL(url!).port;
    const hasIpv6Loopback = Object.values(networkInterfaces()).some((addresses) => addresses?.some((a) => a.address === '::1'));
    if (hasIpv6Loopback) expect((await fetch(`http://[::1]:${port}/healthz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
  });
});
