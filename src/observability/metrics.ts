import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { SourceName } from '../errors.js';
import type { BreakerState } from '../resilience/source-policy.js';
import type { HttpSource } from '../sources/http-source.js';
import { TalliedHistogram } from './tallied-histogram.js';
import { droppedLogLines } from '../logger.js';

const BREAKER_VALUE: Record<BreakerState, number> = { CLOSED: 0, HALF_OPEN: 1, OPEN: 2 };
/** Operation names are the client's choice: past this many distinct ones, the rest count as "other". */
const MAX_OPERATION_NAMES = 200;
/** Seconds: from a cached answer (~ms) to a request at its deadline. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * Everything /metrics shows, in its own registry (so two servers in one
 * process, as in tests, never collide). Labels are bounded: source, route
 * template, error code, cache entity and tier, operation name (capped) — never
 * an id or a user.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly upstreamCalls = new Counter({
    name: 'gateway_upstream_requests_total',
    help: 'Upstream HTTP attempts by outcome (ok or the error code).',
    labelNames: ['source', 'route', 'outcome'],
    registers: [this.registry],
  });
  readonly upstreamDuration = new Histogram({
    name: 'gateway_upstream_request_duration_seconds',
    help: 'Upstream HTTP attempt duration.',
    labelNames: ['source', 'route'],
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  readonly upstreamRetries = new Counter({
    name: 'gateway_upstream_retries_total',
    help: 'Upstream attempts after the first of a call.',
    labelNames: ['source', 'route'],
    registers: [this.registry],
  });
  readonly upstreamClosedIdle = new Counter({
    name: 'gateway_upstream_closed_idle_connections_total',
    help: 'Pooled connections a vendor had closed while idle (its idle timeout shorter than <SOURCE>_KEEP_ALIVE_MS, unsaid), met by a call that was then sent again at once on another: not failures.',
    labelNames: ['source'],
    registers: [this.registry],
  });
  readonly rateLimitWaits = new Counter({
    name: 'gateway_rate_limiter_waits_total',
    help: 'Calls that waited for a token of our own limiter.',
    labelNames: ['source', 'mode'],
    registers: [this.registry],
  });
  readonly rateLimitRejections = new Counter({
    name: 'gateway_rate_limiter_rejections_total',
    help: 'Calls refused by our own limiter (the wait would pass the deadline).',
    labelNames: ['source', 'mode'],
    registers: [this.registry],
  });
  readonly webhooks = new Counter({
    name: 'gateway_webhooks_total',
    help: 'Vendor webhook requests by outcome: accepted, duplicate (an id already accepted: 2xx, no second effect), bad_signature, bad_request, unknown_source, unavailable (not stored: the vendor retries).',
    labelNames: ['source', 'outcome'],
    registers: [this.registry],
  });
  readonly changeFeedPasses = new Counter({
    name: 'gateway_change_feed_passes_total',
    help: 'Change feed passes by outcome: applied (changes found), idle (none), standby (another instance polls), failed (repeated next interval; the mark did not move).',
    labelNames: ['source', 'outcome'],
    registers: [this.registry],
  });
  readonly changesSeen = new Counter({
    name: 'gateway_changes_total',
    help: 'Records a vendor changed, found by its change feed or by hashing refreshed records: each invalidated and published.',
    labelNames: ['source', 'via'],
    registers: [this.registry],
  });
  readonly upstreamThrottles = new Counter({
    name: 'gateway_upstream_throttles_total',
    help: 'Times a vendor pushed back: signal 429 (refused; the source paused and lowered its rate) or exhausted (its headers said no calls remain; the source paused until the reset).',
    labelNames: ['source', 'signal'],
    registers: [this.registry],
  });
  readonly schemaDrift = new Counter({
    name: 'gateway_upstream_schema_drift_total',
    help: 'Responses in which a vendor sent something its schema does not read: kind unknown (a field or map entry nobody reads), missing (a field absent), type_changed; path normalised ([] for array items, * for map keys).',
    labelNames: ['source', 'endpoint', 'kind', 'path'],
    registers: [this.registry],
  });
  // prom-client's inc() builds a label hash and validates the labels on every call, which showed in
  // profiles of cached queries; the per-query counters are tallied as plain numbers instead and
  // added to their counters when /metrics is collected.
  private readonly cacheLookupTally = new Tally();
  private readonly operationTally = new Tally();
  readonly cacheLookups = tallied(this.cacheLookupTally, {
    name: 'gateway_cache_lookups_total',
    help: 'Cache lookups by entity, tier and result (hit, stale, miss).',
    labelNames: ['entity', 'tier', 'result'],
    registers: [this.registry],
  });
  readonly operations = tallied(this.operationTally, {
    name: 'gateway_graphql_operations_total',
    help: 'GraphQL operations by name, type and whether they had errors.',
    labelNames: ['operation', 'type', 'outcome'],
    registers: [this.registry],
  });
  readonly operationErrors = new Counter({
    name: 'gateway_graphql_errors_total',
    help: 'Errors in GraphQL responses by code.',
    labelNames: ['operation', 'code'],
    registers: [this.registry],
  });
  // Observed on every operation, response-cache hits included: tallied as numbers, not through prom-client's labels().
  readonly operationDuration = new TalliedHistogram('gateway_graphql_operation_duration_seconds', 'GraphQL operation execution time.', ['operation', 'type'], DURATION_BUCKETS, [
    this.registry,
  ]);
  readonly requestsShed = new Counter({
    name: 'gateway_requests_shed_total',
    help: 'GraphQL requests refused with 503 because the server was over capacity, by reason (in_flight, entity_reads, event_loop_delay, heap, queue_wait).',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly admissionWait = new Histogram({
    name: 'gateway_admission_queue_wait_seconds',
    help: 'How long GraphQL requests that waited in the admission queue (LOAD_QUEUE_AT_ENTITY_READS) waited before they ran.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly callerRejections = new Counter({ name: 'gateway_caller_rate_limited_total', help: 'Requests refused by the per-caller rate limit.', registers: [this.registry] });
  private readonly operationNames = new Set<string>();

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    let counted = 0;
    new Counter({
      name: 'gateway_log_lines_dropped_total',
      help: 'Log lines dropped because stdout was not read while LOG_BUFFER_MAX_BYTES waited for it (a stalled log collector).',
      registers: [this.registry],
      collect() {
        const now = droppedLogLines();
        this.inc(now - counted);
        counted = now;
      },
    });
  }

  /** Cache lookups, several per query: tallied, and added to the counter when /metrics is collected. */
  countCacheLookups(entity: string, tier: string, result: string, n: number): void {
    this.cacheLookupTally.add(entity, tier, result, n);
  }

  /** One executed operation: its duration, and whether it had errors. */
  countOperation(name: string, type: string, seconds: number, hadErrors: boolean): void {
    this.operationDuration.observe(name, type, seconds);
    this.operationTally.add(name, type, hadErrors ? 'error' : 'ok', 1);
  }

  /** Counts every attempt, retry and limiter decision of the sources, and shows each breaker's state. */
  watchSources(sources: HttpSource[]): void {
    for (const source of sources) {
      source.onAttempt((e) => {
        this.upstreamCalls.labels(e.source, e.route, e.error ? e.error.code : 'ok').inc();
        this.upstreamDuration.labels(e.source, e.route).observe(e.durationMs / 1000);
        if (e.attempt > 1) this.upstreamRetries.labels(e.source, e.route).inc();
        if (e.closedIdle) this.upstreamClosedIdle.labels(e.source).inc(e.closedIdle);
      });
      source.policy.limiter.onWait((e) => this.rateLimitWaits.labels(e.source, e.mode).inc());
      source.policy.limiter.onReject((e) => this.rateLimitRejections.labels(e.source, e.mode).inc());
      source.drift.onDrift((e) => this.schemaDrift.labels(e.source, e.endpoint, e.kind, e.path).inc());
      source.policy.limiter.onThrottle((e) => this.upstreamThrottles.labels(e.source, e.signal).inc());
    }
    new Gauge({
      name: 'gateway_upstream_rate_limit_per_second',
      help: 'The rate each source sends at: what it learned of the vendor from 429s and rate-limit headers, at most the configured ceiling.',
      // Under WORKERS=N each worker reports it; summed it would mean nothing.
      aggregator: 'max',
      labelNames: ['source'],
      registers: [this.registry],
      collect() {
        for (const s of sources) this.labels(s.name).set(s.policy.limiter.ratePerSec);
      },
    });
    const byName = new Map<SourceName, HttpSource>(sources.map((s) => [s.name, s]));
    new Gauge({
      name: 'gateway_circuit_breaker_state',
      help: 'Circuit breaker per source: 0 closed, 1 half-open, 2 open.',
      // Under WORKERS=N each worker reports it; summed it would mean nothing.
      aggregator: 'max',
      labelNames: ['source'],
      registers: [this.registry],
      collect() {
        for (const [name, s] of byName) this.labels(name).set(BREAKER_VALUE[s.policy.state]);
      },
    });
  }

  /** The admission queue's length and the requests it let run, read when /metrics is collected. */
  watchAdmission(queue: { readonly waiting: number; readonly inProgress: number }): void {
    new Gauge({
      name: 'gateway_admission_queue_requests',
      help: 'GraphQL requests in the admission queue, by state (waiting: in line; running: let in, not yet answered).',
      labelNames: ['state'],
      registers: [this.registry],
      collect() {
        this.labels('waiting').set(queue.waiting);
        this.labels('running').set(queue.inProgress);
      },
    });
  }

  /** Open client connections against MAX_CLIENT_CONNECTIONS, and what was done at the cap; read when /metrics is collected. */
  watchClientConnections(connections: { readonly count: number; readonly max: number; readonly closedIdle: number; readonly refused: number }): void {
    new Gauge({
      name: 'gateway_client_connections',
      help: 'Client connections open (requests, event streams, WebSockets, idle keep-alive); MAX_CLIENT_CONNECTIONS bounds them.',
      registers: [this.registry],
      collect() {
        this.set(connections.count);
      },
    });
    new Gauge({ name: 'gateway_client_connections_max', help: 'MAX_CLIENT_CONNECTIONS as in effect (set, or derived from the open-file limit).', registers: [this.registry] }).set(
      connections.max,
    );
    const counted = { idle_closed: 0, refused: 0 };
    new Counter({
      name: 'gateway_client_connections_at_cap_total',
      help: 'At MAX_CLIENT_CONNECTIONS: idle connections closed to take new ones (idle_closed), and new ones refused because none was idle (refused).',
      labelNames: ['outcome'],
      registers: [this.registry],
      collect() {
        const now = { idle_closed: connections.closedIdle, refused: connections.refused };
        for (const outcome of ['idle_closed', 'refused'] as const) {
          this.labels(outcome).inc(now[outcome] - counted[outcome]);
          counted[outcome] = now[outcome];
        }
      },
    });
  }

  /** The entity reads LOAD_SHED_MAX_ENTITY_READS bounds, read when /metrics is collected. */
  watchEntityReads(count: () => number): void {
    new Gauge({
      name: 'gateway_entity_reads_in_flight',
      help: 'Entity reads (a user, its metrics, its unread count…) of the GraphQL requests in progress, summed: what LOAD_SHED_MAX_ENTITY_READS bounds.',
      registers: [this.registry],
      collect() {
        this.set(count());
      },
    });
  }

  /** Queue depth per state; dead letters are the FAILED ones. */
  watchDeliveries(counts: () => Promise<Record<'QUEUED' | 'DELIVERED' | 'FAILED', number>>): void {
    new Gauge({
      name: 'gateway_delivery_queue_jobs',
      help: 'Secondary deliveries by state (FAILED: dead-lettered).',
      // Under WORKERS=N each worker reports it; summed it would mean nothing.
      aggregator: 'max',
      labelNames: ['state'],
      registers: [this.registry],
      async collect() {
        try {
          for (const [state, n] of Object.entries(await counts())) this.labels(state).set(n);
        } catch {
          // Redis away: the gauge keeps its last values rather than failing the scrape.
        }
      },
    });
  }

  /** A bounded label for a client-chosen operation name. */
  operationLabel(name: string | null | undefined): string {
    if (!name) return 'anonymous';
    if (this.operationNames.has(name)) return name;
    if (this.operationNames.size >= MAX_OPERATION_NAMES || !/^[_A-Za-z][_0-9A-Za-z]{0,63}$/.test(name)) return 'other';
    this.operationNames.add(name);
    return name;
  }
}

/** Counts by three label values, as plain numbers until they are handed on. */
class Tally {
  private readonly counts = new Map<string, Map<string, Map<string, number>>>();

  add(a: string, b: string, c: string, n: number): void {
    let byB = this.counts.get(a);
    if (!byB) this.counts.set(a, (byB = new Map()));
    let byC = byB.get(b);
    if (!byC) byB.set(b, (byC = new Map()));
    byC.set(c, (byC.get(c) ?? 0) + n);
  }

  /** Hands on the counts added since the last drain. */
  drain(into: (a: string, b: string, c: string, n: number) => void): void {
    for (const [a, byB] of this.counts) {
      for (const [b, byC] of byB) {
        for (const [c, n] of byC) {
          if (n === 0) continue;
          into(a, b, c, n);
          byC.set(c, 0);
        }
      }
    }
  }
}

/** A counter with three labels whose counts come from a tally, drained at every collection. */
function tallied(tally: Tally, config: { name: string; help: string; labelNames: [string, string, string]; registers: Registry[] }): Counter<string> {
  return new Counter({
    ...config,
    collect() {
      tally.drain((a, b, c, n) => this.labels(a, b, c).inc(n));
    },
  });
}
