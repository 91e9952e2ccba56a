import { percentileOfSorted } from '../src/observability/percentile.js';

/**
 * What a simulated upstream saw, served at `GET /__admin/stats`: calls per
 * route (by template, e.g. "GET /v1/users/:id/events"), the status of each
 * answer, the batch sizes of bulk calls, the last raw paths, and a per-second
 * histogram of all requests. Admin calls are not counted.
 */
export interface RouteStats {
  calls: number;
  statuses: Record<string, number>;
  batchSizes: number[];
  /** The last few request targets (path and query), newest last. */
  recent: string[];
  /** The W3C `traceparent` of the last few requests that sent one (a caller's trace reaching the vendor). */
  traceparents: string[];
}

export interface StatsSnapshot {
  totalCalls: number;
  routes: Record<string, RouteStats>;
  /** Unix second → requests received in it. */
  perSecond: Record<string, number>;
  maxPerSecond: number;
  /**
   * 429s sent, and requests that arrived while a 429 had told the client to
   * wait (before its Retry-After or reset instant) and were not already on
   * their way when it was sent (more than IN_FLIGHT_GRACE_MS after it).
   */
  throttled: number;
  ignoredRetryAfter: number;
  /** Requests for a target (method and URL) that got a 429, sent again before that 429's Retry-After or reset. */
  retriedEarly: number;
  /**
   * How long answered requests took here, from reaching the handler to the response handed to the socket, over
   * the last KEEP_SERVICE_TIMES of them: the vendor's own service time, injected latency included, as its machine
   * delivered it (on a loaded machine, longer than the latency asked for). Null percentiles: nothing answered yet.
   */
  serviceMs: { count: number; p50: number | null; p99: number | null };
  /** Idle connections this upstream closed (the `idleCloseMs` fault). */
  idleClosed: number;
  /** Connections clients opened to this upstream. */
  connections: number;
}

/** Requests arriving this soon after a 429 went out were sent before the client could have read it. */
export const IN_FLIGHT_GRACE_MS = 50;

const KEEP_BATCHES = 1000;
const KEEP_RECENT = 20;
const KEEP_SECONDS = 900;
const KEEP_SERVICE_TIMES = 20_000;

export class UpstreamStats {
  private totalCalls = 0;
  private routes = new Map<string, RouteStats>();
  private perSecond = new Map<number, number>();
  private throttledCount = 0;
  private ignoredRetryAfter = 0;
  /** The latest 429's send time and the instant it told clients to come back. */
  private throttle = { sentAt: 0, until: 0 };
  private retriedEarly = 0;
  /** Target refused with a 429 → when it was told to come back; expired entries are dropped as it grows. */
  private refusedUntil = new Map<string, number>();
  /** A ring of the last KEEP_SERVICE_TIMES service times (ms), and how many were recorded in all. */
  private serviceTimes: number[] = [];
  private served = 0;
  private idleClosed = 0;
  private connections = 0;

  private route(name: string): RouteStats {
    let r = this.routes.get(name);
    if (!r) {
      r = { calls: 0, statuses: {}, batchSizes: [], recent: [], traceparents: [] };
      this.routes.set(name, r);
    }
    return r;
  }

  /** Counts a request when it arrives; returns how many arrived in this second so far. */
  arrived(routeName: string, target: string, nowMs: number, traceparent?: string): number {
    this.totalCalls++;
    if (nowMs < this.throttle.until && nowMs > this.throttle.sentAt + IN_FLIGHT_GRACE_MS) this.ignoredRetryAfter++;
    const refusedUntil = this.refusedUntil.get(`${routeName} ${target}`);
    if (refusedUntil !== undefined && nowMs < refusedUntil) this.retriedEarly++;
    const r = this.route(routeName);
    r.calls++;
    r.recent.push(target);
    if (r.recent.length > KEEP_RECENT) r.recent.shift();
    if (traceparent) {
      r.traceparents.push(traceparent);
      if (r.traceparents.length > KEEP_RECENT) r.traceparents.shift();
    }
    const second = Math.floor(nowMs / 1000);
    const inSecond = (this.perSecond.get(second) ?? 0) + 1;
    this.perSecond.set(second, inSecond);
    if (this.perSecond.size > KEEP_SECONDS) {
      const oldest = this.perSecond.keys().next().value;
      if (oldest !== undefined) this.perSecond.delete(oldest);
    }
    return inSecond;
  }

  answered(routeName: string, status: number | 'reset' | 'hang'): void {
    const r = this.route(routeName);
    const key = String(status);
    r.statuses[key] = (r.statuses[key] ?? 0) + 1;
  }

  /** A 429 for `target` went out at `sentAt` telling clients to wait until `until` (Unix ms). */
  throttledUntil(routeName: string, target: string, sentAt: number, until: number): void {
    this.throttledCount++;
    if (this.refusedUntil.size >= 10_000) for (const [key, at] of this.refusedUntil) if (at <= sentAt) this.refusedUntil.delete(key);
    this.refusedUntil.set(`${routeName} ${target}`, until);
    if (until > this.throttle.until) this.throttle = { sentAt, until };
  }

  /** An answered request's time here, from arrival to its response handed to the socket. */
  serviceTime(ms: number): void {
    this.serviceTimes[this.served % KEEP_SERVICE_TIMES] = ms;
    this.served++;
  }

  closedIdle(): void {
    this.idleClosed++;
  }

  connectionOpened(): void {
    this.connections++;
  }

  batch(routeName: string, size: number): void {
    const sizes = this.route(routeName).batchSizes;
    sizes.push(size);
    if (sizes.length > KEEP_BATCHES) sizes.shift();
  }

  reset(): void {
    this.totalCalls = 0;
    this.routes = new Map();
    this.perSecond = new Map();
    this.throttledCount = 0;
    this.ignoredRetryAfter = 0;
    this.throttle = { sentAt: 0, until: 0 };
    this.retriedEarly = 0;
    this.refusedUntil = new Map();
    this.serviceTimes = [];
    this.served = 0;
    this.idleClosed = 0;
    this.connections = 0;
  }

  snapshot(): StatsSnapshot {
    const perSecond: Record<string, number> = {};
    let maxPerSecond = 0;
    for (const [second, n] of this.perSecond) {
      perSecond[second] = n;
      if (n > maxPerSecond) maxPerSecond = n;
    }
    const routes: Record<string, RouteStats> = {};
    for (const [name, r] of this.routes) {
      routes[name] = { calls: r.calls, statuses: { ...r.statuses }, batchSizes: [...r.batchSizes], recent: [...r.recent], traceparents: [...r.traceparents] };
    }
    const sorted = [...this.serviceTimes].sort((a, b) => a - b);
    return {
      totalCalls: this.totalCalls,
      routes,
      perSecond,
      maxPerSecond,
      throttled: this.throttledCount,
      ignoredRetryAfter: this.ignoredRetryAfter,
      retriedEarly: this.retriedEarly,
      serviceMs: { count: this.served, p50: percentileOfSorted(sorted, 0.5), p99: percentileOfSorted(sorted, 0.99) },
      idleClosed: this.idleClosed,
      connections: this.connections,
    };
  }
}
