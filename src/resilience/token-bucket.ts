/**
 * A token bucket in this process: `ratePerSec` tokens a second, at most
 * `burst` saved up. The rate is given on each call, since a source's rate is
 * learned as it goes (AdaptiveRate). `reserve` takes a token now or books the
 * next free one and says how long to wait for it; it books nothing when that
 * wait exceeds `maxWaitMs`. Timed on the monotonic clock: on the wall clock, a
 * clock stepped back an hour (NTP correcting a clock that ran ahead, a VM
 * restored) left the bucket an hour's tokens in debt, and the vendor unused.
 */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.updatedAt = now();
  }

  /** Milliseconds to wait for the booked token, or a negative number: the wait that would have been needed (nothing booked). */
  reserve(maxWaitMs: number, ratePerSec: number, burst: number): number {
    const now = this.now();
    this.tokens = Math.min(burst, this.tokens + ((now - this.updatedAt) * ratePerSec) / 1000);
    this.updatedAt = now;
    const waitMs = this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) * 1000) / ratePerSec);
    if (waitMs > maxWaitMs) return -Math.max(1, waitMs);
    this.tokens -= 1;
    return waitMs;
  }
}
