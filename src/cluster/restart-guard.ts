/**
 * When a dead worker may be replaced: at once the first time, then after a
 * growing pause (250 ms, doubling, at most 30 s) while deaths keep coming, and
 * not at all once more than `maxRestarts` happened within `windowMs` (a crash
 * loop: a bad deploy or config restarts forever otherwise, and hides it).
 */
export class RestartGuard {
  private readonly restarts: number[] = [];

  constructor(
    private readonly maxRestarts = 5,
    private readonly windowMs = 60_000,
  ) {}

  /** The pause before the next replacement, or null: give up. */
  next(now = performance.now()): number | null {
    while (this.restarts.length > 0 && this.restarts[0]! <= now - this.windowMs) this.restarts.shift();
    if (this.restarts.length >= this.maxRestarts) return null;
    const recent = this.restarts.length;
    this.restarts.push(now);
    return recent === 0 ? 0 : Math.min(30_000, 250 * 2 ** (recent - 1));
  }
}
