import { afterAll, beforeAll, beforeEach, expect } from 'vitest';
import { startSimulatedUpstreams, type SimulatedUpstreams, type StatsSnapshot } from '../../simulator/index.js';

/**
 * The simulated vendors against UPSTREAMS.md, over raw HTTP, as any client
 * would see them: each vendor's contract tests live in its folder
 * (`src/sources/<name>/simulated-twin.test.ts`) and start the twins with this.
 */
export interface Twins {
  up: SimulatedUpstreams;
  identity(path: string, init?: RequestInit): Promise<Response>;
  analytics(path: string, init?: RequestInit): Promise<Response>;
  notifications(path: string, init?: RequestInit): Promise<Response>;
  audit(path: string, init?: RequestInit): Promise<Response>;
  stats(u: { url: string }): Promise<StatsSnapshot>;
  faults(u: { url: string }, profile: unknown): Promise<Response>;
  /** A fresh identity access token (the twins issue 1-second ones). */
  token(): Promise<string>;
}

export function simulatedTwins(): Twins {
  let up: SimulatedUpstreams;
  let identityToken: string;
  beforeAll(async () => {
    up = await startSimulatedUpstreams({ tokenTtlSeconds: 1 });
  });
  afterAll(() => up.close());
  beforeEach(async () => {
    for (const u of up.all) await fetch(`${u.url}/__admin/reset`, { method: 'POST' });
    identityToken = await token();
  });

  async function token(): Promise<string> {
    const res = await fetch(`${up.identity.url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        grant_type: 'client_credentials',
        client_id: up.credentials.identity.clientId,
        client_secret: up.credentials.identity.clientSecret,
        audience: up.credentials.identity.audience,
      }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { access_token: string; token_type: string; expires_in: number };
    expect(body.token_type).toBe('Bearer');
    expect(body.expires_in).toBe(1);
    return body.access_token;
  }
  const json = { 'content-type': 'application/json' };
  const merge = (init: RequestInit, headers: Record<string, string>): RequestInit => ({ ...init, headers: { ...headers, ...(init.headers as Record<string, string>) } });
  return {
    get up() {
      return up;
    },
    token,
    identity: (path, init = {}) => fetch(`${up.identity.url}${path}`, merge(init, { authorization: `Bearer ${identityToken}` })),
    analytics: (path, init = {}) => fetch(`${up.analytics.url}${path}`, merge(init, { 'x-api-key': up.credentials.analyticsApiKey, ...json })),
    notifications: (path, init = {}) => fetch(`${up.notifications.url}${path}`, merge(init, { authorization: `Bearer ${up.credentials.notificationsToken}`, ...json })),
    audit: (path, init = {}) => fetch(`${up.audit.url}${path}`, merge(init, { 'x-api-key': up.credentials.auditApiKey, ...json })),
    stats: async (u) => (await (await fetch(`${u.url}/__admin/stats`)).json()) as StatsSnapshot,
    faults: (u, profile) => fetch(`${u.url}/__admin/faults`, { method: 'POST', headers: json, body: JSON.stringify(profile) }),
  };
}
