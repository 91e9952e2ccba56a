/**
 * A log line at most once an interval, with how many times it was due since the last one: one line a source of
 * trouble, not one per occurrence, and still the count. Timed on the monotonic clock: a wall clock stepped back an hour
 * (NTP correcting one that ran ahead, a VM restored) would otherwise silence the line for that hour.
 */
export class LineEvery {
  private lastAt = -Infinity;
  private since = 0;

  constructor(private readonly intervalMs: number) {}

  /** How many times it was due since the last line (this one included) when a line is due now; else null. */
  due(): number | null {
    this.since++;
    const now = performance.now();
    if (now - this.lastAt < this.intervalMs) return null;
    const since = this.since;
    this.lastAt = now;
    this.since = 0;
    return since;
  }
}
