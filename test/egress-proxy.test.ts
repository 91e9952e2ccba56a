import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import type { UpstreamEndpoints } from '../src/sources/registry.js';
import { startConnectProxy, type ConnectProxy } from './helpers/connect-proxy.js';
import { calls, stackPool } from './helpers/stack.js';

/**
 * Vendors reached through a forward proxy, as networks that allow no other way out have it (HTTPS_PROXY,
 * HTTP_PROXY, NO_PROXY). Before, the settings were not read: every vendor call went straight out, and where that is
 * not allowed every field of every vendor failed. The vendors here have names only the proxy knows (`*.test`), so a
 * call that does not go through it cannot reach them at all.
 */
type AnyData = Record<string, any>;

const DASHBOARD = `query($id: ID!) { user(id: $id) { name metrics { pageViews } unreadNotificationCount } }`;

/** Every vendor under a name only the proxy resolves: `http://<source>.vendor.test:<its port>`. */
const behindNames = (real: UpstreamEndpoints): UpstreamEndpoints =>
  Object.fromEntries(
    Object.entries(real).map(([name, endpoint]) => {
      const url = new URL(endpoint.url);
      return [name, { ...endpoint, url: `http://${name}.vendor.test:${url.port}` }];
    }),
  ) as unknown as UpstreamEndpoints;

describe('vendors called through a forward proxy', () => {
  let proxy: ConnectProxy;
  let guarded: ConnectProxy;
  beforeAll(async () => {
    proxy = await startConnectProxy();
    guarded = await startConnectProxy({ user: 'gateway', password: 'p@ss word' });
  });
  afterAll(async () => {
    await Promise.all([proxy.close(), guarded.close()]);
  });
  const stackWith = stackPool();

  it('HTTP_PROXY: every vendor answers through it, over a few kept tunnels, not one a call', async () => {
    const stack = await stackWith({ endpoints: behindNames, proxy: { http: proxy.url, https: undefined, noProxy: '' } });
    for (let i = 0; i < 10; i++) {
      const res = await stack.gql<AnyData>(DASHBOARD, { id: stack.userId(700 + i) });
      expect(res.body.errors).toBeUndefined();
      expect(res.body.data!.user.metrics.pageViews).toBeTypeOf('number');
    }
    const tunnels = Object.fromEntries([...proxy.tunnels].map(([target, n]) => [target.split('.')[0], n]));
    expect(Object.keys(tunnels).sort()).toEqual(['analytics', 'identity', 'notifications']);
    // 10 dashboards: at least 10 calls to each, over kept connections (each a tunnel).
    expect(calls(await stack.stats('analytics'), 'POST /v1/metrics/query')).toBeGreaterThanOrEqual(10);
    for (const n of Object.values(tunnels)) expect(n).toBeLessThanOrEqual(3);
  });

  it('a proxy that asks for credentials gets them from the URL; wrong ones fail the fields, not retried, with a line that says the proxy refused', async () => {
    const stack = await stackWith({ endpoints: behindNames, proxy: { http: guarded.url, https: undefined, noProxy: '' } });
    expect((await stack.gql<AnyData>(DASHBOARD, { id: stack.userId(720) })).body.errors).toBeUndefined();
    expect(guarded.refused).toBe(0);

    const wrong = await stackWith({ endpoints: behindNames, proxy: { http: guarded.url.replace('p%40ss', 'wrong'), https: undefined, noProxy: '' } });
    const res = await wrong.gql<AnyData>(DASHBOARD, { id: wrong.userId(721) });
    expect(res.body.data!.user).toEqual({ name: null, metrics: null, unreadNotificationCount: null });
    expect(res.body.errors!.map((e) => `${e.extensions!.source} ${e.extensions!.code} ${e.extensions!.retryable}`).sort()).toEqual([
      'analytics SOURCE_UNAVAILABLE false',
      'identity SOURCE_UNAVAILABLE false',
      'notifications SOURCE_UNAVAILABLE false',
    ]);
    // One refused tunnel a vendor (identity's for its token), none tried again: before, 7, each "network error UND_ERR_ABORTED".
    expect(guarded.refused).toBe(3);
    const lines = wrong.logs.map((l) => JSON.parse(l) as AnyData).filter((l) => l.level === 40 && l.source);
    expect(new Set(lines.map((l) => l.detail))).toEqual(new Set(['the proxy refused the tunnel: 407 (check the user and password in HTTP_PROXY or HTTPS_PROXY)']));
  });

  it('NO_PROXY: a vendor it names is called directly (here its name resolves nowhere), the rest through the proxy', async () => {
    const stack = await stackWith({ endpoints: behindNames, proxy: { http: proxy.url, https: undefined, noProxy: 'example.com, analytics.vendor.test' } });
    const res = await stack.gql<AnyData>(DASHBOARD, { id: stack.userId(730) });
    expect(res.body.data!.user.name).toBeTypeOf('string');
    expect(res.body.errors!.map((e) => [e.path!.at(-1), e.extensions!.code])).toEqual([['metrics', 'SOURCE_UNAVAILABLE']]);
    expect(calls(await stack.stats('analytics'), 'POST /v1/metrics/query')).toBe(0);
  });
});

describe("an identity provider's JWKS through the proxy", () => {
  it('AUTH_JWKS_URL under a name only the proxy knows: its keys are fetched through it and tokens verify', async () => {
    const proxy = await startConnectProxy();
    const pair = await generateKeyPair('RS256', { extractable: true });
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'key-1', alg: 'RS256', use: 'sig' };
    const idp = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })));
    await new Promise<void>((r) => idp.listen(0, '127.0.0.1', r));
    try {
      const jwksUrl = `http://idp.vendor.test:${(idp.address() as AddressInfo).port}/.well-known/jwks.json`;
      const stack = await stackPool()({ proxy: { http: proxy.url, https: undefined, noProxy: '' }, ops: (o) => ({ ...o, auth: { ...o.auth, jwksUrl } }) });
      const token = await new SignJWT({ scope: 'admin' }).setProtectedHeader({ alg: 'RS256', kid: 'key-1' }).setSubject('someone').setExpirationTime('5m').sign(pair.privateKey);
      const res = await stack.gql<AnyData>('{ __typename }', undefined, { token });
      expect(res.status).toBe(200);
      expect([...proxy.tunnels.keys()].some((target) => target.startsWith('idp.vendor.test:'))).toBe(true);
    } finally {
      await new Promise<void>((r) => idp.close(() => r()));
      await proxy.close();
    }
  });
});

describe('proxy settings', () => {
  it('read from HTTP_PROXY, HTTPS_PROXY, NO_PROXY, the lower-case names winning; none set: no proxy; a bad URL named', () => {
    expect(loadConfig({}).proxy).toBeNull();
    expect(loadConfig({ HTTPS_PROXY: 'http://proxy.internal:3128', NO_PROXY: '.internal' }).proxy).toEqual({
      http: undefined,
      https: 'http://proxy.internal:3128',
      noProxy: '.internal',
    });
    expect(loadConfig({ HTTP_PROXY: 'http://upper:3128', http_proxy: 'http://lower:3128' }).proxy).toEqual({ http: 'http://lower:3128', https: undefined, noProxy: '' });
    expect(() => loadConfig({ HTTPS_PROXY: 'socks://proxy:1080' })).toThrow(/HTTPS_PROXY must be the http\(s\) URL of a proxy/);
    // A proxy's password is not echoed back.
    expect(() => loadConfig({ HTTPS_PROXY: 'ftp://user:hunter2@proxy:21' })).toThrow(/user:\*\*\*@proxy/);
  });
});
