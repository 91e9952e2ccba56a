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

  snapshot(): SourceStatus[] {
    const now = this.now();
    const first = Math.floor(now / BUCKET_MS) * BUCKET_MS - (BUCKETS - 1) * BUCKET_MS;
    return this.sources.map((source) => {
      const byStart = new Map(this.buckets.get(source.name)!.map((b) => [b.start, b]));
      const series: SourceSeries = { start: [], requestsPerSec: [], errorRate: [], p50Ms: [], p99Ms: [] };
      const all: number[] = [];
      let calls = 0;
      let errors = 0;
      let hits = 0;
      let lookups = 0;
      let lastMinuteCalls = 0;
      for (let i = 0; i < BUCKETS; i++) {
        const start = first + i * BUCKET_MS;
        const b = byStart.get(start);
        const sorted = b ? [...b.durations].sort((x, y) => x - y) : [];
        series.start.push(start);
        series.requestsPerSec.push(b ? Math.round((b.calls / (BUCKET_MS / 1000)) * 100) / 100 : 0);
        series.errorRate.push(b && b.calls > 0 ? Math.round((b.errors / b.calls) * 1000) / 1000 : null);
        series.p50Ms.push(percentileOfSorted(sorted, 0.5));
        series.p99Ms.push(percentileOfSorted(sorted, 0.99));
        if (!b) continue;
        all.push(...b.durations);
        calls += b.calls;
        errors += b.errors;
        hits += b.cacheHits;
        lookups += b.cacheLookups;
        if (start > now - 60_000) lastMinuteCalls += b.calls;
      }
      all.sort((x, y) => x - y);
      const rate = source.policy.limiter.ratePerSec;
      return {
        name: source.name,
        breaker: source.policy.state,
        rateLimitPerSec: Math.round(rate * 100) / 100,
        ceilingPerSec: this.ceilings[source.name] ?? rate,
        headroomPerSec: Math.max(0, Math.round((rate - lastMinuteCalls / 60) * 100) / 100),
        cacheHitRatio: lookups > 0 ? Math.round((hits / lookups) * 1000) / 1000 : null,
        drift: source.drift.list().map((d) => ({ endpoint: d.endpoint, kind: d.kind, path: d.path, count: d.count })),
        last15m: { calls, errorRate: calls > 0 ? Math.round((errors / calls) * 1000) / 1000 : null, p50Ms: percentileOfSorted(all, 0.5), p99Ms: percentileOfSorted(all, 0.99) },
        series,
      };
    });
  }
}
