/**
 * One deadline for all the upstream work of a GraphQL request. Every upstream
 * call, every rate-limit wait and every retry pause checks it; when it passes,
 * its signal aborts whatever is still in flight (undici cancels the request).
 * `dispose()` when the request is done, so nothing of it outlives it: an
 * un-cleared timer would keep the request's listeners alive until it fired.
 */
export class Deadline {
  readonly expiresAt: number;
  /**
   * Made when the signal is first asked for: a request answered from L1 never
   * needs one, and an AbortSignal (an EventTarget, with its map of listeners)
   * is among the larger things a request keeps for its whole life.
   */
  private controller: AbortController | undefined;
  private readonly timer: NodeJS.Timeout;

  private constructor(ms: number) {
    this.expiresAt = Date.now() + ms;
    this.timer = setTimeout(() => this.controller?.abort(), ms);
    this.timer.unref();
  }

  static after(ms: number): Deadline {
    return new Deadline(ms);
  }

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.expired) this.controller.abort();
    }
    return this.controller.signal;
  }

  remainingMs(now = Date.now()): number {
    return Math.max(0, this.expiresAt - now);
  }

  get expired(): boolean {
    return this.controller?.signal.aborted === true || Date.now() >= this.expiresAt;
  }

  dispose(): void {
    clearTimeout(this.timer);
  }
}
