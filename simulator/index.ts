import { randomBytes } from 'node:crypto';
import type { UpstreamEndpoints } from '../src/sources/registry.js';
import { analyticsApi } from './analytics.js';
import { auditApi } from './audit.js';
import { Dataset } from './dataset.js';
import type { FaultProfileInput } from './faults.js';
import { identityApi, type IdentityCredentials } from './identity.js';
import { notificationsApi } from './notifications.js';
import { SimulatedUpstream } from './simulated-server.js';

export { SimulatedUpstream } from './simulated-server.js';
export type { FaultProfile, FaultProfileInput } from './faults.js';
export type { StatsSnapshot } from './stats.js';

export interface SimulatedCredentials {
  identity: IdentityCredentials;
  analyticsApiKey: string;
  notificationsToken: string;
  auditApiKey: string;
}

export interface SimulatedUpstreamsOptions {
  seed?: number;
  /** At least 1,000 by default (1,200). */
  users?: number;
  /** Fresh random ones when absent. */
  credentials?: SimulatedCredentials;
  /** Lifetime of identity's access tokens, in seconds (default 86400). */
  tokenTtlSeconds?: number;
  /** Fault profile every upstream starts with (e.g. latency for benchmarks). */
  faults?: FaultProfileInput;
  /** Fixed ports; 0 (any free port) when absent. */
  ports?: Partial<Record<keyof UpstreamEndpoints, number>>;
  host?: string;
  /** Told as a large dataset is made (every 100,000 users). */
  onSeedProgress?: (made: number, total: number) => void;
}

export interface SimulatedUpstreams {
  dataset: Dataset;
  credentials: SimulatedCredentials;
  identity: SimulatedUpstream;
  analytics: SimulatedUpstream;
  notifications: SimulatedUpstream;
  audit: SimulatedUpstream;
  all: SimulatedUpstream[];
  /** What to point the gateway at: URLs and the credentials these upstreams accept. */
  endpoints: UpstreamEndpoints;
  close(): Promise<void>;
}

export function randomCredentials(): SimulatedCredentials {
  const secret = () => randomBytes(18).toString('base64url');
  return {
    identity: { clientId: secret(), clientSecret: secret(), audience: 'https://identity.simulated/api/v2/' },
    analyticsApiKey: secret(),
    notificationsToken: secret(),
    auditApiKey: secret(),
  };
}

export async function startSimulatedUpstreams(options: SimulatedUpstreamsOptions = {}): Promise<SimulatedUpstreams> {
  const dataset = new Dataset(options.seed ?? 42, options.users ?? 1200, options.onSeedProgress);
  const credentials = options.credentials ?? randomCredentials();
  const host = options.host ?? '127.0.0.1';
  const identity = new SimulatedUpstream(identityApi(dataset, credentials.identity, options.tokenTtlSeconds ?? 86_400));
  const analytics = new SimulatedUpstream(analyticsApi(dataset, credentials.analyticsApiKey));
  const notifications = new SimulatedUpstream(notificationsApi(dataset, credentials.notificationsToken));
  const audit = new SimulatedUpstream(auditApi(credentials.auditApiKey));
  const all = [identity, analytics, notifications, audit];
  try {
    await Promise.all([
      identity.listen(options.ports?.identity ?? 0, host),
      analytics.listen(options.ports?.analytics ?? 0, host),
      notifications.listen(options.ports?.notifications ?? 0, host),
      audit.listen(options.ports?.audit ?? 0, host),
    ]);
  } catch (error) {
    await Promise.all(all.map((u) => u.close()));
    throw error;
  }
  if (options.faults) for (const upstream of all) upstream.setFaults(options.faults);
  return {
    dataset,
    credentials,
    identity,
    analytics,
    notifications,
    audit,
    all,
    endpoints: {
      identity: { url: identity.url, ...credentials.identity },
      analytics: { url: analytics.url, apiKey: credentials.analyticsApiKey },
      notifications: { url: notifications.url, token: credentials.notificationsToken },
      audit: { url: audit.url, apiKey: credentials.auditApiKey },
    },
    close: async () => {
      await Promise.all(all.map((u) => u.close()));
    },
  };
}
