/**
 * Which workers have gone silent. Each worker says it is alive every
 * second over IPC (siblings.ts); one that has said nothing for `timeoutMs`
 * has its event loop stuck (a loop that never yields, a process frozen) and
 * will not come back by itself. Node's round-robin then hands new connections
 * to the others, but whatever the stuck one holds (a load balancer's pooled
 * connections among them) hangs, and the set serves on fewer workers for good.
 */
export class StalledWorkers<W> {
  private readonly lastHeard = new Map<W, number>();

  constructor(private readonly timeoutMs: number) {}

  /** A worker started, or said it is alive. */
  heard(worker: W, now = Date.now()): void {
    this.lastHeard.set(worker, now);
  }

  forget(worker: W): void {
    this.lastHeard.delete(worker);
  }

  /** The workers silent for longer than the timeout, with how long; each is reported once (forgotten here). */
  stalled(now = Date.now()): { worker: W; silentMs: number }[] {
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
