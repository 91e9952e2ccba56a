import { percentileOfSorted } from './percentile.js';

/** Most attempts a window keeps: past this, the oldest goes as each new one comes. */
const MAX_SAMPLES = 5000;

export interface AttemptSummary {
  errorRate: number;
  calls: number;
  latencyMs: { p50: number; p95: number; p99: number } | null;
}

/**
 * One source's attempts over the last `spanMs` (a minute): when, how long,
 * whether each counted as a failure. A ring of typed arrays, not arrays shifted
 * on every call: once full, a busy source's add is O(1) where a `splice(0, 1)`
 * of three 5,000-element arrays was ~15,000 moves per vendor call.
 */
export class AttemptWindow {
  private readonly at: Float64Array;
  private readonly duration: Float64Array;
  private readonly failed: Uint8Array;
  /** Index of the oldest attempt held. */
  private head = 0;
  private size = 0;

  constructor(
    private readonly spanMs = 60_000,
    private readonly capacity = MAX_SAMPLES,
  ) {
    this.at = new Float64Array(capacity);
    this.duration = new Float64Array(capacity);
    this.failed = new Uint8Array(capacity);
  }

  add(at: number, durationMs: number, failed: boolean): void {
    const i = (this.head + this.size) % this.capacity;
    this.at[i] = at;
    this.duration[i] = durationMs;
    this.failed[i] = failed ? 1 : 0;
    if (this.size < this.capacity) this.size++;
    else this.head = (this.head + 1) % this.capacity;
  }

  summary(now: number): AttemptSummary {
    while (this.size > 0 && this.at[this.head]! < now - this.spanMs) {
      this.head = (this.head + 1) % this.capacity;
      this.size--;
    }
    const calls = this.size;
    if (calls === 0) return { errorRate: 0, calls: 0, latencyMs: null };
    const sorted = new Float64Array(calls);
    let failures = 0;
    for (let k = 0; k < calls; k++) {
      const i = (this.head + k) % this.capacity;
      sorted[k] = this.duration[i]!;
      failures += this.failed[i]!;
    }
    sorted.sort(); // numeric: a typed array sorts by value, no comparator
    const pick = (q: number) => percentileOfSorted(sorted, q)!; // not null: calls > 0
    return { errorRate: Math.round((failures / calls) * 1000) / 1000, calls, latencyMs: { p50: pick(0.5), p95: pick(0.95), p99: pick(0.99) } };
  }
}
