import { setMaxListeners } from 'node:events';

/**
 * One deadline for all the upstream work of a GraphQL request. Every upstream
 * call, every rate-limit wait and every retry pause checks it; when it passes,
 * its signal aborts whatever is still in flight (undici cancels the request).
 * `dispose()` when the request is done, so nothing of it outlives it: an
 * un-cleared timer would keep the request's listeners alive until it fired.
 */
export class Deadline {
  /** On the monotonic clock (performance.now()): a wall clock stepped during a request neither ends it nor lengthens it. */
  readonly expiresAt: number;
  /**
   * Made when the signal is first asked for: a request answered from L1 never
   * needs one, and an AbortSignal (an EventTarget, with its map of listeners)
   * is among the larger things a request keeps for its whole life.
   */
  private controller: AbortController | undefined;
  private expiry: { promise: Promise<void>; resolve: () => void } | undefined;
  private readonly timer: NodeJS.Timeout;

  private constructor(ms: number) {
    this.expiresAt = performance.now() + ms;
    this.timer = setTimeout(() => {
      this.controller?.abort();
      this.expiry?.resolve();
    }, ms);
    this.timer.unref();
  }

  static after(ms: number): Deadline {
    return new Deadline(ms);
  }

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      // Each vendor call in flight listens on it (undici's abort listener): a list's per-key reads are hundreds at
      // once. Node's default of 10 would print "Possible EventTarget memory leak" to stderr on busy lists; the
      // listeners go with their calls, and the signal with its request.
      setMaxListeners(0, this.controller.signal);
      if (this.expired) this.controller.abort();
    }
    return this.controller.signal;
  }

  /**
   * Resolves when the deadline passes (never, once disposed first). One promise a deadline, made when first asked for:
   * a request that waits on several shared fetches races each against it, without a promise, listener and closures
   * of its own for each wait (what a request holds while it waits is what a scavenge copies, bench/RESULTS.md, session 26).
   */
  get passed(): Promise<void> {
    if (this.expiry === undefined) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.expiry = { promise, resolve };
      if (this.expired) resolve();
    }
    return this.expiry.promise;
  }

  remainingMs(now = performance.now()): number {
    return Math.max(0, this.expiresAt - now);
  }

  get expired(): boolean {
    return this.controller?.signal.aborted === true || performance.now() >= this.expiresAt;
  }

  dispose(): void {
    clearTimeout(this.timer);
  }
}
