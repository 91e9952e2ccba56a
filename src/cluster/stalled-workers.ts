/**
 * Which workers have gone silent. Each worker says it is alive every
 * second over IPC (siblings.ts); one that has said nothing for `timeoutMs`
 * has its event loop stuck (a loop that never yields, a process frozen) and
 * will not come back by itself. Node's round-robin then hands new connections
 * to the others, but whatever the stuck one holds (a load balancer's pooled
 * connections among them) hangs, and the set serves on fewer workers for good.
 *
 * Timed on the monotonic clock, not the wall clock: a clock stepped forward
 * would otherwise make every worker look silent at once. And only while the
 * primary itself was running: when it was not looked at for half the timeout
 * (the whole machine or container frozen, then thawed), nobody's silence
 * means anything yet, and every worker starts afresh.
 */
export class StalledWorkers<W> {
  private readonly lastHeard = new Map<W, number>();
  private lastLook: number | undefined;

  constructor(private readonly timeoutMs: number) {}

  /** A worker started, or said it is alive. */
  heard(worker: W, now = performance.now()): void {
    this.lastHeard.set(worker, now);
  }

  forget(worker: W): void {
    this.lastHeard.delete(worker);
  }

  /** The workers silent for longer than the timeout, with how long; each is reported once (forgotten here). Looked at every second or so. */
  stalled(now = performance.now()): { worker: W; silentMs: number }[] {
    const away = this.lastLook === undefined ? 0 : now - this.lastLook;
    this.lastLook = now;
    if (away > this.timeoutMs / 2) {
      for (const worker of this.lastHeard.keys()) this.lastHeard.set(worker, now);
      return [];
    }
    const found: { worker: W; silentMs: number }[] = [];
    for (const [worker, at] of this.lastHeard) {
      if (now - at > this.timeoutMs) {
        found.push({ worker, silentMs: now - at });
        this.lastHeard.delete(worker);
      }
    }
    return found;
  }
}
