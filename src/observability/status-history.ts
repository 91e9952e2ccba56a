import type { SourceName } from '../errors.js';
import { countsAsFailure, type BreakerState } from '../resilience/source-policy.js';
import type { HttpSource } from '../sources/http-source.js';
import { percentileOfSorted } from './percentile.js';

/** 15 minutes in 60 buckets of 15 s: what the status page draws. */
export const BUCKET_MS = 15_000;
export const BUCKETS = 60;
/** Durations kept per bucket for its percentiles (a reservoir past that). */
const DURATIONS_PER_BUCKET = 2_000;

interface Bucket {
  start: number;
  calls: number;
  errors: number;
  durations: number[];
  cacheHits: number;
  cacheLookups: number;
}

/** One source's 15 minutes, bucket by bucket, oldest first; null where nothing was called. */
export interface SourceSeries {
  start: number[];
  requestsPerSec: number[];
  errorRate: (number | null)[];
  p50Ms: (number | null)[];
  p99Ms: (number | null)[];
}

export interface SourceStatus {
  name: SourceName;
  breaker: BreakerState;
  /** The rate the source sends at now (learned from 429s and headers), and its configured ceiling. */
  rateLimitPerSec: number;
  ceilingPerSec: number;
  /** Of the learned rate, what the last minute's calls left unused (requests a second). */
  headroomPerSec: number;
  /** The last 15 minutes, cache lookups of its entities answered by L1 or L2 (null: none). */
  cacheHitRatio: number | null;
  drift: { endpoint: string; kind: string; path: string; count: number }[];
  last15m: { calls: number; errorRate: number | null; p50Ms: number | null; p99Ms: number | null };
  series: SourceSeries;
}

/** One bucket of one process: its counts, and its durations' percentiles (null: no call). */
export interface BucketPart {
  start: number;
  calls: number;
  errors: number;
  cacheHits: number;
  cacheLookups: number;
  p50Ms: number | null;
  p99Ms: number | null;
}

/** One source as one process saw it (StatusHistory.part), what the workers of a set send each other. */
export interface SourcePart {
  name: SourceName;
  breaker: BreakerState;
  rateLimitPerSec: number;
  ceilingPerSec: number;
  lastMinuteCalls: number;
  drift: SourceStatus['drift'];
  buckets: BucketPart[];
  /** Over all its buckets. */
  p50Ms: number | null;
  p99Ms: number | null;
}

const BREAKER_RANK: Record<BreakerState, number> = { CLOSED: 0, HALF_OPEN: 1, OPEN: 2 };
const round = (n: number, places: number) => Math.round(n * 10 ** places) / 10 ** places;

/** Percentiles of several processes' parts: exact for one; else the median a weighted mean of theirs, the p99 the worst. */
function percentilesOf(parts: readonly { calls: number; p50Ms: number | null; p99Ms: number | null }[]): { p50Ms: number | null; p99Ms: number | null } {
  const seen = parts.filter((p) => p.calls > 0 && p.p50Ms !== null);
  if (seen.length === 0) return { p50Ms: null, p99Ms: null };
  if (seen.length === 1) return { p50Ms: seen[0]!.p50Ms, p99Ms: seen[0]!.p99Ms };
  const calls = seen.reduce((n, p) => n + p.calls, 0);
  return { p50Ms: round(seen.reduce((n, p) => n + p.p50Ms! * p.calls, 0) / calls, 3), p99Ms: Math.max(...seen.map((p) => p.p99Ms ?? 0)) };
}

/**
 * Every source's status from the parts of one or more processes (the workers of a set): counts summed, the worst
 * breaker, drift by place with its counts summed, and the rates summed when each worker sends at its own share of a
 * limit, or the one shared rate (`shared`).
 */
export function statusOf(processes: readonly (readonly SourcePart[])[], first: number, shared: boolean): SourceStatus[] {
  return processes[0]!.map(({ name }) => {
    const parts = processes.map((p) => p.find((s) => s.name === name)).filter((p): p is SourcePart => p !== undefined);
    const series: SourceSeries = { start: [], requestsPerSec: [], errorRate: [], p50Ms: [], p99Ms: [] };
    let calls = 0;
    let errors = 0;
    let hits = 0;
    let lookups = 0;
    for (let i = 0; i < BUCKETS; i++) {
      const start = first + i * BUCKET_MS;
      const here = parts.map((p) => p.buckets.find((b) => b.start === start)).filter((b): b is BucketPart => b !== undefined);
      const bucketCalls = here.reduce((n, b) => n + b.calls, 0);
      const bucketErrors = here.reduce((n, b) => n + b.errors, 0);
      const { p50Ms, p99Ms } = percentilesOf(here);
      series.start.push(start);
      series.requestsPerSec.push(round(bucketCalls / (BUCKET_MS / 1000), 2));
      series.errorRate.push(bucketCalls > 0 ? round(bucketErrors / bucketCalls, 3) : null);
      series.p50Ms.push(p50Ms);
      series.p99Ms.push(p99Ms);
      calls += bucketCalls;
      errors += bucketErrors;
      for (const b of here) {
        hits += b.cacheHits;
        lookups += b.cacheLookups;
      }
    }
    const combine = (values: number[]) => (shared ? Math.max(...values) : values.reduce((n, v) => n + v, 0));
    const rate = combine(parts.map((p) => p.rateLimitPerSec));
    const lastMinuteCalls = parts.reduce((n, p) => n + p.lastMinuteCalls, 0);
    const drift = new Map<string, SourceStatus['drift'][number]>();
    for (const p of parts) {
      for (const d of p.drift) {
        const key = `${d.endpoint} ${d.kind} ${d.path}`;
        const known = drift.get(key);
        if (known) known.count += d.count;
        else drift.set(key, { ...d });
      }
    }
    const perProcess = parts.map((p) => ({ calls: p.buckets.reduce((n, b) => n + b.calls, 0), p50Ms: p.p50Ms, p99Ms: p.p99Ms }));
    return {
      name,
      breaker: parts.reduce<BreakerState>((worst, p) => (BREAKER_RANK[p.breaker] > BREAKER_RANK[worst] ? p.breaker : worst), 'CLOSED'),
      rateLimitPerSec: round(rate, 2),
      ceilingPerSec: combine(parts.map((p) => p.ceilingPerSec)),
      headroomPerSec: Math.max(0, round(rate - lastMinuteCalls / 60, 2)),
      cacheHitRatio: lookups > 0 ? round(hits / lookups, 3) : null,
      drift: [...drift.values()],
      last15m: { calls, errorRate: calls > 0 ? round(errors / calls, 3) : null, ...percentilesOf(perProcess) },
      series,
    };
  });
}

/**
 * What `/status` shows of each source over the last 15 minutes, from the
 * sources' attempt events and the caches' lookup counts; the rest (breaker,
 * learned rate, drift) is read off the sources when asked. A few KB per source.
 */
export class StatusHistory {
  private readonly buckets = new Map<SourceName, Bucket[]>();
  /** Entity name → its source (null: not one watched here); counted on every cached field, so not split each time. */
  private readonly sourceOf = new Map<string, SourceName | null>();

  constructor(
    private readonly sources: readonly HttpSource[],
    private readonly ceilings: Partial<Record<SourceName, number>>,
    private readonly now: () => number = Date.now,
  ) {
    for (const source of sources) {
      this.buckets.set(source.name, []);
      source.onAttempt((e) => {
        const bucket = this.current(source.name);
        bucket.calls++;
        if (e.error !== undefined && countsAsFailure(e.error)) bucket.errors++;
        if (bucket.durations.length < DURATIONS_PER_BUCKET) bucket.durations.push(e.durationMs);
        else bucket.durations[Math.floor(Math.random() * bucket.calls) % DURATIONS_PER_BUCKET] = e.durationMs;
      });
    }
  }

  /**
   * A cache lookup of an entity (`<source>.<thing>`), as the tiers count it: every key once at L1, and L1's misses
   * again at L2. A key is a lookup once (at L1) and a hit where a tier answered it.
   */
  countCacheLookups(entity: string, tier: 'l1' | 'l2', result: 'hit' | 'stale' | 'miss', n: number): void {
    let source = this.sourceOf.get(entity);
    if (source === undefined) {
      const name = entity.slice(0, entity.indexOf('.')) as SourceName;
      this.sourceOf.set(entity, (source = this.buckets.has(name) ? name : null));
    }
    if (source === null) return;
    const bucket = this.current(source);
    if (tier === 'l1') bucket.cacheLookups += n;
    if (result !== 'miss') bucket.cacheHits += n;
  }

  private current(name: SourceName): Bucket {
    const list = this.buckets.get(name)!;
    const start = Math.floor(this.now() / BUCKET_MS) * BUCKET_MS;
    let last = list.at(-1);
    if (!last || last.start !== start) {
      list.push((last = { start, calls: 0, errors: 0, durations: [], cacheHits: 0, cacheLookups: 0 }));
      while (list.length > 0 && list[0]!.start <= start - BUCKETS * BUCKET_MS) list.shift();
    }
    return last;
  }

  /**
   * This process's part of the status, compact enough to send to the other workers of a WORKERS=N set: per source,
   * its buckets' counts and percentiles, and what is read off the source now.
   */
  part(): SourcePart[] {
    const now = this.now();
    const first = Math.floor(now / BUCKET_MS) * BUCKET_MS - (BUCKETS - 1) * BUCKET_MS;
    return this.sources.map((source) => {
      const buckets: BucketPart[] = [];
      const all: number[] = [];
      let lastMinuteCalls = 0;
      for (const b of this.buckets.get(source.name)!) {
        if (b.start < first) continue;
        const sorted = [...b.durations].sort((x, y) => x - y);
        buckets.push({
          start: b.start,
          calls: b.calls,
          errors: b.errors,
          cacheHits: b.cacheHits,
          cacheLookups: b.cacheLookups,
          p50Ms: percentileOfSorted(sorted, 0.5),
          p99Ms: percentileOfSorted(sorted, 0.99),
        });
        all.push(...b.durations);
        if (b.start > now - 60_000) lastMinuteCalls += b.calls;
      }
      all.sort((x, y) => x - y);
      const rate = source.policy.limiter.ratePerSec;
      return {
        name: source.name,
        breaker: source.policy.state,
        rateLimitPerSec: rate,
        ceilingPerSec: this.ceilings[source.name] ?? rate,
        lastMinuteCalls,
        drift: source.drift.list().map((d) => ({ endpoint: d.endpoint, kind: d.kind, path: d.path, count: d.count })),
        buckets,
        p50Ms: percentileOfSorted(all, 0.5),
        p99Ms: percentileOfSorted(all, 0.99),
      };
    });
  }

  /**
   * What `/status` shows: this process's part, with the other workers' (`peers`) of a WORKERS=N set. `shared`: the
   * workers share one rate limit through Redis (each says the same rate), else each sends at its own share of it.
   */
  snapshot(peers: readonly (readonly SourcePart[])[] = [], shared = false): SourceStatus[] {
    return statusOf([this.part(), ...peers], Math.floor(this.now() / BUCKET_MS) * BUCKET_MS - (BUCKETS - 1) * BUCKET_MS, shared);
  }
}
