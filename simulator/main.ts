/**
 * `npm run upstreams`: the four simulated upstreams as standalone servers, the
 * way a deployment would meet real vendors. Prints the variables to give
 * `npm start` in another shell.
 *
 * UPSTREAMS_PORT (default 4100): identity on it, analytics +1, notifications +2, audit +3;
 * 0: each on a free port the system picks (tests and benchmarks: no collisions).
 * UPSTREAMS_LATENCY_MS / UPSTREAMS_JITTER_MS: a starting latency profile.
 * UPSTREAMS_USERS / UPSTREAMS_SEED: dataset size and seed.
 * UPSTREAMS_TOKEN_TTL_SECONDS: identity's access-token lifetime.
 */
import { z } from 'zod';
import { startSimulatedUpstreams, type SimulatedCredentials } from './index.js';

const env = z
  .object({
    UPSTREAMS_PORT: z.coerce.number().int().min(0).max(65_532).default(4100),
    UPSTREAMS_HOST: z.string().default('127.0.0.1'),
    UPSTREAMS_LATENCY_MS: z.coerce.number().int().min(0).default(0),
    UPSTREAMS_JITTER_MS: z.coerce.number().int().min(0).default(0),
    UPSTREAMS_USERS: z.coerce.number().int().min(1).max(1_000_000).default(1200),
    UPSTREAMS_SEED: z.coerce.number().int().default(42),
    UPSTREAMS_TOKEN_TTL_SECONDS: z.coerce.number().int().min(1).default(86_400),
  })
  .safeParse(process.env);
if (!env.success) {
  for (const issue of env.error.issues) console.error(`${String(issue.path[0])}: ${issue.message}`);
  process.exit(1);
}
const o = env.data;

// Fixed, documented development credentials so the printed exports stay valid across restarts.
const credentials: SimulatedCredentials = {
  identity: { clientId: 'dev-client', clientSecret: 'dev-client-secret', audience: 'https://identity.simulated/api/v2/' },
  analyticsApiKey: 'dev-analytics-key',
  notificationsToken: 'dev-notifications-token',
  auditApiKey: 'dev-audit-key',
};

const upstreams = await startSimulatedUpstreams({
  seed: o.UPSTREAMS_SEED,
  users: o.UPSTREAMS_USERS,
  credentials,
  tokenTtlSeconds: o.UPSTREAMS_TOKEN_TTL_SECONDS,
  host: o.UPSTREAMS_HOST,
  ...(o.UPSTREAMS_USERS > 100_000
    ? {
        onSeedProgress: (made: number, total: number) =>
          console.log(`seeding users: ${made.toLocaleString('en')} of ${total.toLocaleString('en')} (${Math.round((100 * made) / total)} %)`),
      }
    : {}),
  faults: { latencyMs: o.UPSTREAMS_LATENCY_MS, jitterMs: o.UPSTREAMS_JITTER_MS },
  ports:
    o.UPSTREAMS_PORT === 0
      ? { identity: 0, analytics: 0, notifications: 0, audit: 0 }
      : { identity: o.UPSTREAMS_PORT, analytics: o.UPSTREAMS_PORT + 1, notifications: o.UPSTREAMS_PORT + 2, audit: o.UPSTREAMS_PORT + 3 },
});

const e = upstreams.endpoints;
console.log(`Simulated upstreams running (${upstreams.dataset.users.length} users, seed ${o.UPSTREAMS_SEED}).
Faults: POST <url>/__admin/faults   Stats: GET <url>/__admin/stats

Point the server at them (in another shell):

export IDENTITY_URL=${e.identity.url} IDENTITY_CLIENT_ID=${e.identity.clientId} IDENTITY_CLIENT_SECRET=${e.identity.clientSecret} IDENTITY_AUDIENCE=${e.identity.audience}
export ANALYTICS_URL=${e.analytics.url} ANALYTICS_API_KEY=${e.analytics.apiKey}
export NOTIFICATIONS_URL=${e.notifications.url} NOTIFICATIONS_TOKEN=${e.notifications.token}
export AUDIT_URL=${e.audit.url} AUDIT_API_KEY=${e.audit.apiKey}
npm start

A user id to try: ${upstreams.dataset.users[0]!.user_id}`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void upstreams.close().then(() => process.exit(0));
  });
}
