/**
 * Runs a cache drop once more, a while after the first: a vendor may answer a
 * write (or send its event) before its own reads show the change (reads from a
 * replica), so what was read in between was cached as it was before. One
 * timer a change, unref'd (it never holds the process open), all cleared on
 * close; `afterMs` 0 is off.
 */
export class SettleAgain {
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly afterMs: number,
    /** A drop that failed: its entries expire by their TTL. */
    private readonly onError: (err: unknown) => void,
  ) {}

  after(again: () => Promise<unknown>): void {
    if (this.afterMs <= 0) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      again().catch(this.onError);
    }, this.afterMs);
    timer.unref();
    this.timers.add(timer);
  }

  close(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }
}
