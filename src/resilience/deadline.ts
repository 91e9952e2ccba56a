/**
 * One deadline for all the upstream work of a GraphQL request. Every upstream
 * call, every rate-limit wait and every retry pause checks it; when it passes,
 * its signal aborts whatever is still in flight (undici cancels the request).
 */
export class Deadline {
  readonly signal: AbortSignal;
  readonly expiresAt: number;

  private constructor(ms: number) {
    this.expiresAt = Date.now() + ms;
    this.signal = AbortSignal.timeout(ms);
  }

  static after(ms: number): Deadline {
    return new Deadline(ms);
  }

  remainingMs(now = Date.now()): number {
    return Math.max(0, this.expiresAt - now);
  }

  get expired(): boolean {
    return this.signal.aborted || Date.now() >= this.expiresAt;
  }
}
