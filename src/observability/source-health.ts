import type { SourceName } from '../errors.js';
import { countsAsFailure, type BreakerState } from '../resilience/source-policy.js';
import type { RateLimiterMode } from '../resilience/rate-limiter.js';
import type { DriftEvent, DriftRecord } from '../sources/drift.js';
import type { AttemptEvent, HttpSource } from '../sources/http-source.js';
import type { Logger } from '../logger.js';
import { AttemptWindow, type AttemptSummary } from './attempt-window.js';

export interface SourceHealthSnapshot extends AttemptSummary {
  name: SourceName;
  state: BreakerState;
  rateLimiter: RateLimiterMode;
  rateLimitPerSec: number;
  drift: DriftRecord[];
}

const BREAKER_RANK: Record<BreakerState, number> = { CLOSED: 0, HALF_OPEN: 1, OPEN: 2 };

/**
 * The sources as the workers of a WORKERS=N set see them together (`processes`: each worker's snapshot, this one's
 * first), for `Query.sources`: calls summed and the error rate over all of them, the median a mean of the workers'
 * weighted by calls and the p95 and p99 the worst (exact for one worker), the worst breaker, LOCAL when any worker
 * lost the shared bucket, drift by place with its counts summed. Rates are summed when each worker sends at its own
 * share of a limit, or the one shared rate (`shared`). Before, each query showed the worker that happened to answer.
 */
export function setHealth(processes: readonly (readonly SourceHealthSnapshot[])[], shared: boolean): SourceHealthSnapshot[] {
  if (processes.length === 1) return [...processes[0]!];
  return processes[0]!.map(({ name }) => {
    const parts = processes.map((p) => p.find((s) => s.name === name)).filter((p): p is SourceHealthSnapshot => p !== undefined);
    const calls = parts.reduce((n, p) => n + p.calls, 0);
    const timed = parts.filter((p) => p.calls > 0 && p.latencyMs !== null);
    const rates = parts.map((p) => p.rateLimitPerSec);
    const drift = new Map<string, DriftRecord>();
    for (const p of parts) {
      for (const d of p.drift) {
        const key = `${d.endpoint} ${d.kind} ${d.path}`;
        const known = drift.get(key);
        if (!known) drift.set(key, { ...d });
        else {
          const latest = d.lastSeenAt > known.lastSeenAt ? d : known;
          drift.set(key, { ...latest, count: known.count + d.count, firstSeenAt: d.firstSeenAt < known.firstSeenAt ? d.firstSeenAt : known.firstSeenAt });
        }
      }
    }
    return {
      name,
      state: parts.reduce<BreakerState>((worst, p) => (BREAKER_RANK[p.state] > BREAKER_RANK[worst] ? p.state : worst), 'CLOSED'),
      rateLimiter: parts.some((p) => p.rateLimiter === 'LOCAL') ? 'LOCAL' : 'SHARED',
      rateLimitPerSec: Math.round((shared ? Math.max(...rates) : rates.reduce((n, r) => n + r, 0)) * 100) / 100,
      drift: [...drift.values()].sort((a, b) => b.lastSeenAt.localeCompare(a.lastSeenAt)),
      calls,
      errorRate: calls > 0 ? Math.round((parts.reduce((n, p) => n + p.errorRate * p.calls, 0) / calls) * 1000) / 1000 : 0,
      latencyMs:
        timed.length === 0
          ? null
          : {
              p50: Math.round((timed.reduce((n, p) => n + p.latencyMs!.p50 * p.calls, 0) / timed.reduce((n, p) => n + p.calls, 0)) * 1000) / 1000,
              p95: Math.max(...timed.map((p) => p.latencyMs!.p95)),
              p99: Math.max(...timed.map((p) => p.latencyMs!.p99)),
            },
    };
  });
}

/** Below this many calls in the window, a success rate says too little to warn about. */
const MIN_CALLS_TO_JUDGE = 10;

/** What a drift finding says, for its log line: a field's path, or a header (`header Link`). */
function driftText(e: DriftEvent): string {
  const header = e.path.startsWith('header ');
  const what = header ? e.path : `field ${e.path}`;
  if (e.kind === 'unknown') return `unknown ${what} (${e.seenType})`;
  if (e.kind === 'missing') return `${what} missing`;
  return header ? `${what} does not read as ${e.expectedType}` : `${what} is ${e.seenType}, read as ${e.expectedType}`;
}

/**
 * Watches the sources through their events — each HTTP attempt, each breaker
 * transition — for `Query.sources` and the logs. Sources know nothing of it.
 */
export class SourceHealthMonitor {
  private readonly windows = new Map<SourceName, AttemptWindow>();
  private readonly degraded = new Set<SourceName>();
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly sources: HttpSource[],
    private readonly logger: Logger,
    options: { successRateWarn?: number; checkEveryMs?: number } = {},
  ) {
    const threshold = options.successRateWarn ?? 0;
    if (threshold > 0) {
      this.timer = setInterval(() => this.checkSuccessRates(threshold), options.checkEveryMs ?? 5000);
      this.timer.unref();
    }
    for (const source of sources) {
      const window = new AttemptWindow();
      this.windows.set(source.name, window);
      source.onAttempt((e: AttemptEvent) => {
        window.add(performance.now(), e.durationMs, e.error !== undefined && countsAsFailure(e.error));
        if (!logger.isLevelEnabled('debug')) return;
        logger.debug(
          { source: e.source, route: e.route, attempt: e.attempt, status: e.status, code: e.error?.code, detail: e.error?.detail, durationMs: Math.round(e.durationMs) },
          'upstream call',
        );
      });
      source.drift.onDrift((e) => {
        if (!e.first) return;
        // Types and paths only, never values (they may hold personal data).
        logger.warn(
          { source: e.source, endpoint: e.endpoint, kind: e.kind, path: e.path, seenType: e.seenType, expectedType: e.expectedType },
          `${e.source} API drift: ${driftText(e)} in ${e.endpoint}`,
        );
      });
      const policy = source.policy;
      policy.retry.onRetry((r) => logger.debug({ source: source.name, attempt: r.attempt, delayMs: Math.round(r.delay) }, 'retrying upstream call'));
      this.logBreaker(source.name, policy.breaker);
    }
  }

  /**
   * One warn line when a source's circuit opens and one info line when it closes.
   * The breaker opens again after every failed probe (each half-open interval),
   * so those re-openings go to debug: a ten-minute outage is two lines, not 240.
   */
  private logBreaker(name: SourceName, breaker: HttpSource['policy']['breaker']): void {
    let outage: { since: number; failedProbes: number } | undefined;
    breaker.onBreak(() => {
      if (outage) {
        outage.failedProbes++;
        this.logger.debug({ source: name, failedProbes: outage.failedProbes }, `circuit still open: probe of ${name} failed`);
        return;
      }
      outage = { since: performance.now(), failedProbes: 0 };
      this.logger.warn({ source: name }, `circuit opened: calls to ${name} fail fast until a probe succeeds`);
    });
    breaker.onHalfOpen(() => this.logger.debug({ source: name }, `circuit half-open: probing ${name}`));
    breaker.onReset(() => {
      const openMs = outage ? Math.round(performance.now() - outage.since) : 0;
      this.logger.info({ source: name, openMs, failedProbes: outage?.failedProbes ?? 0 }, `circuit closed: ${name} recovered after ${Math.round(openMs / 1000)} s open`);
      outage = undefined;
    });
  }

  close(): void {
    clearInterval(this.timer);
  }

  /** A warning when a source's success rate over the last minute falls below the threshold (with enough calls to tell), one more when it recovers. */
  private checkSuccessRates(threshold: number): void {
    for (const s of this.snapshot()) {
      const successRate = 1 - s.errorRate;
      if (!this.degraded.has(s.name) && s.calls >= MIN_CALLS_TO_JUDGE && successRate < threshold) {
        this.degraded.add(s.name);
        this.logger.warn({ source: s.name, successRate, calls: s.calls, threshold, state: s.state }, `${s.name}: success rate over the last minute is below ${threshold}`);
      } else if (this.degraded.has(s.name) && (successRate >= threshold || s.calls === 0)) {
        this.degraded.delete(s.name);
        this.logger.info({ source: s.name, successRate, calls: s.calls, threshold }, `${s.name}: success rate recovered`);
      }
    }
  }

  /** Over the last minute on the monotonic clock: a wall clock stepped back an hour would hold an hour of calls. */
  snapshot(now = performance.now()): SourceHealthSnapshot[] {
    return this.sources.map((s) => ({
      name: s.name,
      state: s.policy.state,
      rateLimiter: s.policy.limiter.mode,
      rateLimitPerSec: Math.round(s.policy.limiter.ratePerSec * 100) / 100,
      drift: s.drift.list(),
      ...this.windows.get(s.name)!.summary(now),
    }));
  }
}
