/**
 * One deadline for all the upstream work of a GraphQL request. Every upstream
 * call, every rate-limit wait and every retry pause checks it; when it passes,
 * its signal aborts whatever is still in flight (undici cancels the request).
 * `dispose()` when the request is done, so nothing of it outlives it: an
 * un-cleared timer would keep the request's listeners alive until it fired.
 */
export class Deadline {
  readonly expiresAt: number;
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;

  private constructor(ms: number) {
    this.expiresAt = Date.now() + ms;
    this.timer = setTimeout(() => this.controller.abort(), ms);
    this.timer.unref();
  }

  static after(ms: number): Deadline {
    return new Deadline(ms);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  remainingMs(now = Date.now()): number {
    return Math.max(0, this.expiresAt - now);
  }

  get expired(): boolean {
    return this.controller.signal.aborted || Date.now() >= this.expiresAt;
  }

  dispose(): void {
    clearTimeout(this.timer);
  }
}
