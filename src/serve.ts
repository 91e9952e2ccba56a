import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Config, GatewayConfig } from './config.js';
import { uncaughtWhat, type Logger } from './logger.js';
import { createGateway } from './server.js';
import { startEmbeddedVendors, type EmbeddedVendors } from './embedded-vendors.js';
import { clusterSiblings, type Siblings } from './siblings.js';

/**
 * One serving process: the simulated upstreams when no upstream is configured,
 * the server, the banner, and shutdown on a signal. Under `WORKERS=N` this is
 * each worker; the first prints the banner.
 */
export async function serve(config: Config, logger: Logger): Promise<void> {
  // Before anything makes a span: the provider must be registered for them to be recorded.
  // Loaded only when on: the SDK and its OTLP exporter are megabytes of heap a server without tracing never needs.
  const tracing = config.tracing ? (await import('./observability/tracing.js')).startTracing(config.tracing, logger) : null;

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

  const siblings = clusterSiblings();
  const gatewayConfig: GatewayConfig = shareAmongWorkers(
    {
      ...config,
      jwtSecret,
      upstreams: config.upstreams ?? simulated!.endpoints,
      simulatedUpstreams: simulated !== undefined,
    },
    siblings,
    logger,
  );
  const gateway = createGateway(gatewayConfig, {
    logger,
    ...(siblings ? { siblings } : {}),
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
    ...(everywhere
      ? [
          `  listening on every interface (HOST=${config.host}, ${config.host === '::' ? 'IPv6 and IPv4' : 'IPv4 only'}, port ${new URL(url).port}); ${base} is this machine's loopback`,
        ]
      : []),
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
  // One banner for the set: the first worker's (the others say they listen at info).
  if (!siblings || siblings.index === 0) console.log(lines.join('\n'));
  if (siblings) logger.info({ worker: siblings.index, pid: process.pid }, `Worker ${siblings.index} listening`);

  let stopping = false;
  let failed = false;
  /** Drains and stops: the server first (its in-flight requests still need the upstreams), then the embedded upstreams. */
  const stop = (exitCode: number) => {
    stopping = true;
    void (async () => {
      await gateway.close();
      await simulated?.close();
      await tracing?.shutdown();
    })().then(
      () => process.exit(failed ? 1 : exitCode),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  // A worker whose primary is gone (killed, crashed) must not serve on as an orphan.
  // SIGHUP as SIGTERM: a closed terminal or a supervisor's hang-up drains too, rather than Node's instant exit.
  const signals = siblings ? (['SIGINT', 'SIGTERM', 'SIGHUP', 'disconnect'] as const) : (['SIGINT', 'SIGTERM', 'SIGHUP'] as const);
  for (const signal of signals) {
    process.once(signal, () => {
      if (stopping) return;
      logger.info({ signal }, 'shutting down');
      stop(0);
    });
  }
  // What nothing caught (a throw in a callback, a promise rejected with no handler) may have left state half changed:
  // the process stops, as Node's default would, but as on SIGTERM (the requests in flight are answered) and with one
  // fatal JSON line carrying the stack, not a bare stack on stderr and every connection cut.
  process.on('uncaughtException', (error, origin) => {
    // One line is enough: what a broken callback throws again while the process stops says nothing new.
    if (failed) return;
    failed = true;
    logger.fatal({ err: error, origin }, `${uncaughtWhat(origin)}: this process stops, after the requests in flight (SHUTDOWN_GRACE_MS), with exit code 1`);
    // However the shutdown goes: a process in an unknown state does not linger.
    setTimeout(() => process.exit(1), config.ops.shutdownGraceMs + 5_000).unref();
    if (!stopping) stop(1);
  });
}

/**
 * Under `WORKERS=N` without Redis, what is meant to be one stays one: each
 * worker sends at 1/N of every vendor's budget and of each caller's limit,
 * and only the first polls change feeds. With Redis they share buckets and a
 * lock, and nothing needs splitting.
 */
function shareAmongWorkers(config: GatewayConfig, siblings: Siblings | null, logger: Logger): GatewayConfig {
  if (!siblings || siblings.count <= 1 || config.redis) return config;
  const n = siblings.count;
  if (siblings.index === 0) {
    logger.warn(
      { workers: n },
      `${n} workers without REDIS_URL: each sends at 1/${n} of every vendor's budget and of each caller's limit, only worker 0 polls change feeds, and each has its own L1 cache (invalidated across workers through the primary). Set REDIS_URL to share them instead.`,
    );
  }
  const tuning = Object.fromEntries(
    Object.entries(config.tuning).map(([name, t]) => [name, { ...t, rateLimitPerSec: t.rateLimitPerSec / n, rateLimitBurst: Math.max(1, Math.ceil(t.rateLimitBurst / n)) }]),
  ) as GatewayConfig['tuning'];
  const { callerRateLimit } = config.ops;
  return {
    ...config,
    tuning,
    ops: { ...config.ops, callerRateLimit: { perSec: callerRateLimit.perSec / n, burst: Math.max(1, Math.ceil(callerRateLimit.burst / n)) } },
    changeFeeds: siblings.index === 0 ? config.changeFeeds : {},
  };
}
