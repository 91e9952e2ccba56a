import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { ConfigError, loadConfig, type Config, type GatewayConfig } from './config.js';
import { createLogger } from './logger.js';
import { createGateway } from './server.js';
import { startTracing } from './observability/tracing.js';
import { startEmbeddedVendors, type EmbeddedVendors } from './embedded-vendors.js';

/**
 * Entry point: config → the simulated upstreams when no upstream is configured
 * → the server. With nothing configured it is a self-contained demo: fake data,
 * a fresh signing secret, and an admin token printed for GraphiQL.
 */
let config: Config;
try {
  config = loadConfig();
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(error.message);
    process.exit(1);
  }
  throw error;
}

const logger = createLogger({ level: config.logLevel, pretty: process.stdout.isTTY === true && !config.production });
// Before anything makes a span: the provider must be registered for them to be recorded.
const tracing = config.tracing ? startTracing(config.tracing, logger) : null;

let simulated: EmbeddedVendors | undefined;
if (config.upstreams === null) {
  try {
    simulated = await startEmbeddedVendors();
  } catch (error) {
    console.error((error as Error).message);
    process.exit(1);
  }
  logger.warn(
    'No IDENTITY_URL, ANALYTICS_URL, NOTIFICATIONS_URL or AUDIT_URL is set: running the SIMULATED upstreams in this process (fake, seeded data). Set all four with their credentials to use real services.',
  );
}

let demoToken: string | undefined;
let jwtSecret = config.jwtSecret;
if (jwtSecret === undefined && config.ops.auth.jwksUrl === undefined) {
  jwtSecret = randomBytes(32).toString('base64url');
  const sub = simulated?.firstUserId ?? 'admin';
  demoToken = await new SignJWT({ scope: 'admin' })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime('7d')
    .sign(new TextEncoder().encode(jwtSecret));
}

const gatewayConfig: GatewayConfig = {
  ...config,
  jwtSecret,
  upstreams: config.upstreams ?? simulated!.endpoints,
  simulatedUpstreams: simulated !== undefined,
};
const gateway = createGateway(gatewayConfig, {
  logger,
  ...(demoToken ? { graphiqlToken: demoToken } : {}),
  ...(simulated?.firstUserId ? { graphiqlUserId: simulated.firstUserId } : {}),
});

let url: string;
try {
  url = await gateway.listen();
} catch (error) {
  logger.fatal({ err: error }, `cannot listen on ${config.host}:${config.port}`);
  await simulated?.close();
  process.exit(1);
}

const everywhere = config.host === '0.0.0.0' || config.host === '::';
const base = url.replace(/\/graphql$/, '');
const lines = [
  `GraphQL endpoint: ${url}${config.ops.graphiql ? '  (open it in a browser for GraphiQL)' : ''}`,
  ...(everywhere ? [`  listening on every interface (HOST=${config.host}, port ${new URL(url).port}); ${base} is this machine's loopback`] : []),
  `Status page: ${base}/status${demoToken ? `#token=${demoToken}` : '  (an admin token: npm run token -- --sub <id> --admin)'}`,
];
if (simulated) {
  const names = ['identity', 'analytics', 'notifications', 'audit'] as const;
  lines.push(`Simulated upstreams (faults: POST <url>/__admin/faults, stats: GET <url>/__admin/stats):`);
  for (const name of names) lines.push(`  ${name.padEnd(14)}${simulated.urls[name]}`);
  lines.push(`A user id to try: ${simulated.firstUserId}`);
}
if (demoToken) {
  lines.push(
    'AUTH_JWT_SECRET is not set: made a signing secret for this run. Admin token (7 days, this run only):',
    '',
    `  ${demoToken}`,
    '',
    `  curl -s ${url} -H "Authorization: Bearer <token>" -H 'content-type: application/json' -d '{"query":"{ viewer { name unreadNotificationCount } }"}'`,
  );
}
console.log(lines.join('\n'));

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    // The server first (its in-flight requests still need the upstreams), then the embedded upstreams.
    void (async () => {
      await gateway.close();
      await simulated?.close();
      await tracing?.shutdown();
    })().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  });
}
