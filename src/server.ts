import { ServerResponse, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BREAK, getOperationAST, GraphQLError, visit, type DocumentNode } from 'graphql';
import { createYoga, type YogaServerInstance } from 'graphql-yoga';
import { readFileSync } from 'node:fs';
import { useGraphQlJit } from '@envelop/graphql-jit';
import { useDeferStream } from '@graphql-yoga/plugin-defer-stream';
import { usePersistedOperations } from '@graphql-yoga/plugin-persisted-operations';
import { useJwtAuth } from './plugins/use-jwt-auth.js';
import { disposeDeadline } from './plugins/dispose-deadline.js';
import { useAfterExecution } from './plugins/use-after-execution.js';
import { cachedVerifier, hs256Verifier, jwksVerifier, type TokenVerifier } from './auth/token-verifiers.js';
import { Metrics } from './observability/metrics.js';
import { createRequestLog } from './plugins/use-request-log.js';
import { CallerRateLimiter, useCallerRateLimit } from './plugins/use-caller-rate-limit.js';
import { useAutomaticPersistedQueries } from './plugins/use-apq.js';
import { useOpsEndpoints } from './plugins/use-ops-endpoints.js';
import { usePages } from './plugins/use-pages.js';
import { useTracing } from './plugins/use-tracing.js';
import { trace } from '@opentelemetry/api';
import { graphiqlTabs } from './http/pages/graphiql-tabs.js';
import { SiblingStatus } from './observability/sibling-status.js';
import { StatusHistory } from './observability/status-history.js';
import { clusterExposition } from './observability/cluster-metrics.js';
import type { Siblings } from './siblings.js';
import { useResponseCompression } from './plugins/use-response-compression.js';
import { createHttpServer } from './http/node-server.js';
import { createCachedResponses } from './http/cached-responses.js';
import { AdmissionQueue } from './http/admission-queue.js';
import { capClientConnections } from './http/client-connections.js';
import { LoadShedder } from './http/load-shedding.js';
import { corsHeaders } from './http/cors-headers.js';
import { serveGraphQLOverWebSocket } from './http/graphql-websocket.js';
import { createWebhookReceiver } from './webhooks/receiver.js';
import { LiveEvents } from './realtime/live-events.js';
import { SubscriptionLimiter } from './realtime/subscription-limiter.js';
import { ChangeFeedPoller } from './realtime/change-feed.js';
import { HashedChanges } from './realtime/hashed-changes.js';
import { LiveReads } from './realtime/live-reads.js';
import type { GatewayConfig } from './config.js';
import { Caches } from './sources/caches.js';
import type { AnySourceDefinition, SourceChangeFeed } from './sources/define-source.js';
import type { HttpSource } from './sources/http-source.js';
import { SOURCES } from './sources/registry.js';
import { Dependencies, ResponseCache } from './cache/response-cache.js';
import { useResponseCache } from './plugins/use-response-cache.js';
import { StaleReport } from './cache/stale-report.js';
import { reportStale } from './plugins/report-stale.js';
import { maskLaterParts } from './plugins/mask-later-parts.js';
import { Loaders, ReadsInFlight, type RequestServices } from './context.js';
import { SourceError, toClientError, type SourceName } from './errors.js';
import { SourceFailureLog } from './observability/source-failure-log.js';
import { useInputErrorCodes } from './plugins/use-input-error-codes.js';
import { useOperationRules } from './plugins/use-operation-rules.js';
import type { Logger } from './logger.js';
import { LineEvery } from './line-every.js';
import { buildSchema } from './schema.js';
import { setHealth, SourceHealthMonitor } from './observability/source-health.js';
import { RedisConnection } from './redis.js';
import { Deadline } from './resilience/deadline.js';
import { createSources, type Sources } from './sources/index.js';
import { createWrites } from './writes/index.js';

export const EXAMPLE_QUERY = `# One request, three vendors: the profile comes from identity, the metrics
# from analytics, the notifications from the messaging vendor, fetched at once.
# If one of them fails, its fields are null, errors[] says which and why, and
# the rest still answer.
query Dashboard {
  viewer {
    id
    name
    email
    avatarUrl
    lastLoginAt
    metrics(granularity: DAY) {
      pageViews
      sessions
      avgSessionSeconds
      conversionRate
      lastActiveAt
    }
    unreadNotificationCount
    notifications(first: 5) {
      totalCount
      edges { node { title channel read createdAt } }
      pageInfo { hasNextPage endCursor }
    }
  }
  userList(first: 5) {
    totalCount
    edges { node { id name nickname } }
    pageInfo { hasNextPage endCursor }
  }
}
`;

export interface GatewayOptions {
  logger: Logger;
  /** The vendors (default: the registry's, `src/sources/registry.ts`); each needs its endpoint in `config.upstreams` and its tuning. */
  sources?: readonly AnySourceDefinition[];
  /** Prefilled in GraphiQL's headers; only for the demo, whose secret is made at start. */
  graphiqlToken?: string;
  /** A user that exists, for the example operations' variables in GraphiQL (the demo's first user). */
  graphiqlUserId?: string;
  /** Under WORKERS=N: the other workers, through the primary (invalidations, live events, webhook ids, /metrics for the set). */
  siblings?: Siblings;
}

export interface Gateway {
  yoga: YogaServerInstance<Record<string, unknown>, RequestServices>;
  sources: Sources;
  caches: Caches;
  health: SourceHealthMonitor;
  redis: RedisConnection | null;
  server: Server;
  /** Starts listening; resolves to the GraphQL endpoint's URL. */
  listen(): Promise<string>;
  close(): Promise<void>;
}

/** The server: yoga with its plugins, the sources, and the node:http server around them. */
export function createGateway(config: GatewayConfig, options: GatewayOptions): Gateway {
  const { logger } = options;
  const redis = config.redis ? new RedisConnection(config.redis, logger) : null;
  const definitions = options.sources ?? SOURCES;
  const sources = createSources(config.upstreams, config.tuning, { logger, redis, defaultDeadlineMs: config.requestDeadlineMs, definitions, proxy: config.proxy });
  const health = new SourceHealthMonitor(sources.all, logger, { successRateWarn: config.ops.sourceSuccessRateWarn });
  const history = new StatusHistory(sources.all, Object.fromEntries(Object.entries(config.tuning).map(([name, t]) => [name, t.rateLimitPerSec])));
  const siblingStatus = options.siblings && options.siblings.count > 1 ? new SiblingStatus(() => ({ status: history.part(), health: health.snapshot() }), options.siblings) : null;
  // Under WORKERS=N, the whole set's: the rates are each worker's share of a limit without Redis, one shared rate with it.
  const sourceHealth = async () => (siblingStatus ? setHealth([health.snapshot(), ...(await siblingStatus.parts()).map((p) => p.health)], redis !== null) : health.snapshot());
  const metrics = new Metrics();
  metrics.watchSources(sources.all);
  // Sources whose changes are found by hashing what the cache fetches; bound once the caches exist.
  const hashed = new Map<string, HashedChanges>();
  const caches = new Caches(config.cache, sources as unknown as Record<string, HttpSource>, definitions, {
    redis,
    logger,
    sharedDeadlineMs: config.requestDeadlineMs,
    siblings: options.siblings ?? null,
    count: (entity, tier, result, n) => {
      metrics.countCacheLookups(entity, tier, result, n);
      history.countCacheLookups(entity, tier, result, n);
      // On the operation's span: which entities each tier answered, for following one slow request.
      if (config.tracing) trace.getActiveSpan()?.addEvent('cache', { entity, tier, result, keys: n });
    },
    ...(definitions.some((d) => d.changeFeed && config.changeFeeds[d.name as SourceName]?.mode !== 'off')
      ? { observe: (entity: string, keys: readonly unknown[], results: ReadonlyArray<unknown>) => hashed.get(entity)?.observe(keys, results) }
      : {}),
  });
  const responses =
    config.cache.enabled && config.cache.responsesMaxBytes > 0
      ? new ResponseCache(caches.l1, config.cache.responsesMaxBytes, (result, n) => metrics.countCacheLookups('response', 'l1', result, n))
      : null;
  const { writes, deliveries, close: closeWrites } = createWrites(config, { sources, caches, redis, logger });
  metrics.watchDeliveries(() => deliveries.counts());
  logger.info(
    { l1MaxBytes: config.cache.l1MaxBytes, l2: Boolean(redis) && config.cache.enabled },
    config.cache.enabled
      ? redis
        ? 'Cache: L1 in process + L2 in Redis, shared by instances'
        : 'Cache: L1 in process only (set REDIS_URL to share an L2 between instances)'
      : 'Cache off (CACHE_ENABLED=false): every read goes upstream',
  );

  const sourceFailures = new SourceFailureLog(logger);
  const live = new LiveEvents(config.redis, logger, options.siblings ?? null, config.ops.liveEventsKept);
  const changeFeeds = startChangeFeeds(config, { definitions, sources, caches, live, redis, logger, metrics, hashed });
  const subscriptions = new SubscriptionLimiter(config.ops.subscriptionsPerCaller, config.ops.subscriptionHeldEventsMax);
  const liveReads = new LiveReads(caches, config.requestDeadlineMs, config.ops.subscriptionReadWindowMs);
  let draining = false;
  const readsInFlight = new ReadsInFlight();
  const { ops } = config;
  const verifyToken = verifier(config);
  const callerLimiter = new CallerRateLimiter(ops.callerRateLimit.perSec, ops.callerRateLimit.burst, redis);
  const requestLog = createRequestLog({ logger, metrics, failures: sourceFailures });
  const yoga = createYoga<Record<string, unknown>, RequestServices>({
    schema: buildSchema(definitions),
    graphqlEndpoint: '/graphql',
    landingPage: false,
    // GraphiQL's code inlined from the package, not loaded from a CDN: works offline and under a strict CSP.
    // Loaded on the first GraphiQL page, not at start: its inlined bundle is ~25 MB of heap a production server never needs.
    renderGraphiQL: async (graphiqlOptions) => (await import('@graphql-yoga/render-graphiql')).renderGraphiQL(graphiqlOptions),
    graphiql: ops.graphiql ? graphiqlOptions(options) : false,
    // Unexpected errors are always masked ("Unexpected error."), in development too: a stack trace is no client's business.
    maskedErrors: { maskError: (error, message) => toClientError(error, message) },
    batching: ops.limits.batching ? { limit: 10 } : false,
    // No field takes a file: a multipart/form-data POST is a 415, not parsed (one request parser fewer on every request).
    multipart: false,
    // The node server below reads and bounds bodies before yoga sees them (ops/request-body.ts);
    // yoga's own limit would pipe every body through a stream, ~10 % of a cached query's CPU.
    maxRequestBodySize: false,
    cors:
      ops.corsOrigins.length > 0
        ? {
            origin: ops.corsOrigins,
            credentials: true,
            methods: ['GET', 'POST'],
            allowedHeaders: ['authorization', 'content-type', 'x-request-id'],
            exposedHeaders: ['x-request-id', 'retry-after'],
          }
        : false,
    logging: {
      debug: (...args) => logger.debug(args.map(String).join(' ')),
      info: (...args) => logger.info(args.map(String).join(' ')),
      warn: (...args) => logger.warn(args.map(String).join(' ')),
      error: (...args) => {
        const err = args.find((a) => a instanceof Error);
        // A vendor's failure is expected: the request log writes one warn line per source for it, no stack.
        if (err instanceof SourceError || (err instanceof GraphQLError && err.originalError instanceof SourceError)) return;
        const path = err instanceof GraphQLError && err.path ? err.path.join('.') : undefined;
        logger.error(
          { err, ...(path ? { path } : {}) },
          args
            .filter((a) => !(a instanceof Error))
            .map(String)
            .join(' ') || `Unexpected error${path ? ` in ${path}` : ''} (the client was told "Unexpected error."): ${err instanceof Error ? err.message : 'no error object'}`,
        );
      },
    },
    plugins: [
      ...(config.tracing ? [useTracing()] : []),
      useOpsEndpoints({ metrics, health, redis, draining: () => draining, ...(options.siblings ? { exposition: clusterExposition(metrics, options.siblings) } : {}) }),
      usePages({
        verify: verifyToken,
        // Under WORKERS=N, the whole set's, as sourceHealth.
        status: async () => history.snapshot(siblingStatus ? (await siblingStatus.parts()).map((p) => p.status) : [], redis !== null),
        redis,
        graphiql: ops.graphiql,
        deliveries: () => deliveries.counts().catch(() => null),
      }),
      requestLog.plugin,
      ...(ops.persistedOperationsRequired
        ? [
            usePersistedOperations({
              getPersistedOperation: persistedOperations(),
              allowArbitraryOperations: false,
              customErrors: {
                persistedQueryOnly: {
                  message: 'Only allow-listed operations run here: send extensions.persistedQuery.sha256Hash of one.',
                  extensions: { code: 'PERSISTED_QUERY_ONLY', http: { status: 400 } },
                },
                notFound: { message: 'PersistedQueryNotFound', extensions: { code: 'PERSISTED_QUERY_NOT_FOUND', http: { status: 400 } } },
                keyNotFound: { message: 'Send extensions.persistedQuery.sha256Hash.', extensions: { code: 'BAD_REQUEST', http: { status: 400 } } },
              },
            }),
          ]
        : ops.apq
          ? [useAutomaticPersistedQueries()]
          : []),
      useOperationRules(ops.limits, { introspection: ops.introspection }),
      useJwtAuth({ verify: verifyToken }),
      useCallerRateLimit({ limiter: callerLimiter, metrics }),
      // @defer and @stream: the dashboard's fast vendors answer at once, the slow one's fields follow in the same response.
      useDeferStream(),
      // Each distinct document compiled once into a specialised executor (an LRU of them). Two kinds take the standard executor:
      // subscriptions (graphql-jit's does not hand a subscription's arguments to `subscribe`) and documents with @defer/@stream
      // (graphql-jit's would silently answer them in one part).
      useGraphQlJit({}, { enableIf: (args) => !needsStandardExecutor(args.document, args.operationName) }),
      // Once executed: the operation timed and counted (errors as raised), the deadline's timer cleared, stale fields
      // reported, later parts' errors masked (one plugin for the four: each plugin's turn through envelop's hooks costs every request).
      useAfterExecution<Pick<RequestServices, 'deadline' | 'stale'>>(requestLog.execution, disposeDeadline, reportStale, maskLaterParts(toClientError)),
      // After the plugins whose onExecuteDone every operation needs: a hit stops the ones after it.
      ...(responses ? [useResponseCache({ cache: responses, metrics })] : []),
      useInputErrorCodes(),
      // Last: it compresses the response the others have finished (headers included).
      // gzip or brotli by Accept-Encoding, for bodies worth it; mobile clients on slow links gain the most.
      ...(ops.compression ? [useResponseCompression({ thresholdBytes: ops.compression.thresholdBytes })] : []),
    ],
    // The viewer is added by useJwtAuth; this adds what every request needs besides.
    context: ({ res }): RequestServices => {
      const deadline = Deadline.after(config.requestDeadlineMs);
      const dependencies = new Dependencies();
      // An HTTP request's entity reads count (load shedding) until its response is done or its connection drops,
      // however the operation ended; a WebSocket's operations have no response of their own and are not counted.
      const response = res instanceof ServerResponse ? res : undefined;
      const loaders = new Loaders(caches, deadline, dependencies, response ? readsInFlight : undefined);
      response?.once('close', loaders.finish.bind(loaders));
      return {
        loaders,
        sources,
        caches,
        writes,
        deliveries,
        deadline,
        stale: new StaleReport(),
        dependencies,
        sourceHealth,
        simulatedUpstreams: config.simulatedUpstreams,
        live,
        subscriptions,
        liveReads,
        deadlineMs: config.requestDeadlineMs,
      };
    },
  });

  const webhooks = createWebhookReceiver({
    definitions,
    secrets: config.webhookSecrets,
    caches,
    live,
    redis: config.redis,
    logger,
    siblings: options.siblings ?? null,
    onOutcome: (source, outcome) => metrics.webhooks.labels(source, outcome).inc(),
    settleMs: config.webhookSettleMs,
    drift: (name) => sources.all.find((s) => s.name === name)?.drift,
  });
  const cors = corsHeaders(ops.corsOrigins);
  const cachedResponses = responses
    ? createCachedResponses({
        responses,
        verify: verifyToken,
        retryAfterSeconds: (subject) => callerLimiter.retryAfterSeconds(subject),
        metrics,
        logger,
        cors,
        compressionThresholdBytes: ops.compression ? ops.compression.thresholdBytes : null,
        persistedOnly: ops.persistedOperationsRequired,
        hashOnly: ops.persistedOperationsRequired || ops.apq,
        tracing: config.tracing !== null,
      })
    : undefined;
  const overCapacityLines = new LineEvery(10_000);
  const shedder = new LoadShedder(ops.loadShedding, {
    onPressure: (reason, reading) => {
      if (reason)
        logger.warn(
          { reason, ...reading, requestsInFlight: shedder.requestsInFlight, settings: ops.loadShedding },
          'Over capacity: new GraphQL requests get 503 until it recovers',
        );
      else logger.info(reading, 'Back under capacity: GraphQL requests are admitted again');
    },
    entityReads: () => readsInFlight.count,
  });
  const admission = new AdmissionQueue(ops.admission, {
    onStart: (waitedMs) => metrics.admissionWait.observe(waitedMs / 1000),
    readsSoFar: () => readsInFlight.count,
  });
  readsInFlight.onFinish = (reads) => admission.learn(reads);
  metrics.watchAdmission(admission);
  metrics.watchEntityReads(() => readsInFlight.count);
  const vendorConnections = Object.values(config.tuning).reduce((sum, t) => sum + t.connections, 0);
  const connections = capClientConnections(ops.maxClientConnections, vendorConnections, logger);
  metrics.watchClientConnections(connections);
  const server = createHttpServer(yoga, {
    connections,
    shedder,
    admission,
    cors,
    onShed: (reason) => {
      metrics.requestsShed.labels(reason).inc();
      // The loop and heap readings log their own transitions; a full house or a full queue says so at most every 10 s.
      if (reason !== 'in_flight' && reason !== 'entity_reads' && reason !== 'queue_wait') return;
      const shedSinceLastLine = overCapacityLines.due();
      if (shedSinceLastLine !== null) {
        logger.warn(
          {
            reason,
            shedSinceLastLine,
            requestsInFlight: shedder.requestsInFlight,
            entityReads: readsInFlight.count,
            waitingInLine: admission.waiting,
            averageRequestReads: admission.averageRequestReads,
            settings: { ...ops.loadShedding, ...ops.admission },
          },
          'Over capacity: new GraphQL requests get 503',
        );
      }
    },
    maxBodyBytes: ops.limits.maxBodyBytes,
    requestTimeoutMs: ops.limits.requestTimeoutMs,
    keepAliveMs: ops.httpKeepAliveMs,
    stalledStreamCutMs: ops.subscriptionStalledCutMs,
    onStalledStreamCut: (stalledMs) => logger.info({ stalledMs }, "An event stream's client took none of its data for this long (stopped reading): its connection was cut"),
    webhooks,
    ...(cachedResponses ? { cachedResponses, onError: (err: unknown) => logger.error({ err }, 'The response-cache hit path failed; the request went to yoga') } : {}),
  });
  const webSockets = serveGraphQLOverWebSocket(server, yoga);
  let closing: Promise<void> | undefined;
  return {
    yoga,
    sources,
    caches,
    health,
    redis,
    server,
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        // `::` is left to Node: IPv6 and IPv4 on one socket, or IPv4 alone where the machine has no IPv6.
        server.listen({ port: config.port, ...(config.host === '::' ? {} : { host: config.host }) }, () => {
          server.off('error', reject);
          const { port } = server.address() as AddressInfo;
          const everywhere = config.host === '0.0.0.0' || config.host === '::';
          const host = everywhere ? '127.0.0.1' : config.host.includes(':') ? `[${config.host}]` : config.host;
          resolve(`http://${host}:${port}/graphql`);
        });
      }),
    // Once, however often it is asked (a second SIGTERM, a test's cleanup after its own close).
    close: () => (closing ??= shutDown()),
  };

  async function shutDown(): Promise<void> {
    // Not ready any more (load balancers stop sending), no new connections; in-flight requests
    // get the grace period, then their connections are cut.
    draining = true;
    // Live subscriptions end with the instance (clients reconnect to another): they are not in-flight requests.
    await webSockets.close();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const idle = setInterval(() => server.closeIdleConnections(), 100);
    let timer: NodeJS.Timeout | undefined;
    const graceful = await Promise.race([closed.then(() => true), new Promise<false>((r) => (timer = setTimeout(() => r(false), ops.shutdownGraceMs)))]);
    clearInterval(idle);
    clearTimeout(timer);
    if (!graceful) {
      logger.warn({ graceMs: ops.shutdownGraceMs }, 'Requests still running at the end of the shutdown grace period: cutting their connections');
      server.closeAllConnections();
      await closed;
    }
    health.close();
    shedder.close();
    sourceFailures.close();
    await Promise.all(changeFeeds.map((f) => f.close()));
    await webhooks.close();
    live.close();
    await closeWrites();
    await sources.close();
    await caches.close();
    await redis?.close();
  }
}

/**
 * Each source's change feed as configured: a poller for `pull` (started here),
 * a hasher of fetched records for `hash` (put in `hashed`, by the entity it watches).
 */
function startChangeFeeds(
  config: GatewayConfig,
  deps: {
    definitions: readonly AnySourceDefinition[];
    sources: Sources;
    caches: Caches;
    live: LiveEvents;
    redis: RedisConnection | null;
    logger: Logger;
    metrics: Metrics;
    hashed: Map<string, HashedChanges>;
  },
): ChangeFeedPoller[] {
  const pollers: ChangeFeedPoller[] = [];
  for (const d of deps.definitions) {
    const settings = config.changeFeeds[d.name as SourceName];
    const feed = d.changeFeed as SourceChangeFeed<HttpSource> | undefined;
    if (!feed || !settings || settings.mode === 'off') continue;
    const client = (deps.sources as unknown as Record<string, HttpSource>)[d.name]!;
    const onChange = (source: string, n: number, via: 'pull' | 'hash') => deps.metrics.changesSeen.labels(source, via).inc(n);
    const hashInstead = () => {
      const options = { source: d.name, feed, caches: deps.caches, live: deps.live, redis: deps.redis, logger: deps.logger };
      deps.hashed.set(feed.entity, new HashedChanges({ ...options, onChange: (s, n) => onChange(s, n, 'hash') }));
    };
    if (settings.mode === 'hash' || !feed.pull) {
      hashInstead();
      continue;
    }
    const poller = new ChangeFeedPoller({
      source: d.name,
      feed,
      client,
      settings,
      caches: deps.caches,
      live: deps.live,
      redis: deps.redis,
      logger: deps.logger,
      deadlineMs: config.requestDeadlineMs,
      onPass: (source, outcome, applied) => {
        deps.metrics.changeFeedPasses.labels(source, outcome).inc();
        if (applied > 0) onChange(source, applied, 'pull');
      },
      onUnsupported: hashInstead,
    });
    poller.start();
    pollers.push(poller);
  }
  return pollers;
}

/** GraphiQL opens with the dashboard query and a tab per example operation; the demo's token is in every tab's headers. */
function graphiqlOptions(options: GatewayOptions) {
  const headers = options.graphiqlToken ? JSON.stringify({ Authorization: `Bearer ${options.graphiqlToken}` }) : undefined;
  return {
    title: 'REST aggregation gateway',
    defaultQuery: EXAMPLE_QUERY,
    defaultTabs: graphiqlTabs(EXAMPLE_QUERY, options.graphiqlUserId, headers),
    ...(headers ? { headers } : {}),
  };
}

function verifier(config: GatewayConfig): TokenVerifier {
  const { jwksUrl, ...checks } = config.ops.auth;
  if (!jwksUrl && !config.jwtSecret) throw new Error('no AUTH_JWT_SECRET and no AUTH_JWKS_URL: nothing to verify tokens with');
  const verify = jwksUrl ? jwksVerifier(jwksUrl, checks, config.proxy) : hs256Verifier(config.jwtSecret!, checks);
  return cachedVerifier(verify, { clockToleranceSec: checks.clockToleranceSec });
}

/** The allow-list codegen makes from examples/operations/ (`npm run codegen`), by hash with or without its "sha256:" prefix. */
function persistedOperations(): (key: string) => string | null {
  const documents = JSON.parse(readFileSync(new URL('../examples/generated/persisted-documents.json', import.meta.url), 'utf8')) as Record<string, string>;
  const byHash = new Map<string, string>();
  for (const [key, document] of Object.entries(documents)) {
    byHash.set(key, document);
    byHash.set(key.replace(/^sha256:/, ''), document);
  }
  return (key) => byHash.get(key) ?? null;
}

/** Per parsed document (yoga reuses them across requests): whether it uses @defer or @stream, and, without an operation name, whether it subscribes. */
const incrementalDocuments = new WeakMap<DocumentNode, boolean>();
const subscriptionDocuments = new WeakMap<DocumentNode, boolean>();

/** A subscription, or a document with @defer/@stream: what graphql-jit's executor does not run as the standard one does. */
function needsStandardExecutor(document: DocumentNode, operationName: string | null | undefined): boolean {
  let incremental = incrementalDocuments.get(document);
  if (incremental === undefined) {
    incremental = false;
    visit(document, {
      Directive(node) {
        if (node.name.value === 'defer' || node.name.value === 'stream') {
          incremental = true;
          return BREAK;
        }
        return undefined;
      },
    });
    incrementalDocuments.set(document, incremental);
  }
  if (incremental) return true;
  if (operationName) return getOperationAST(document, operationName)?.operation === 'subscription';
  let known = subscriptionDocuments.get(document);
  if (known === undefined) subscriptionDocuments.set(document, (known = getOperationAST(document)?.operation === 'subscription'));
  return known;
}
