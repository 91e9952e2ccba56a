/**
 * What a source has learned of its vendor's real rate limit. The configured
 * rate is a ceiling, not a promise: a 429 pauses every call to the vendor
 * until the moment it named (Retry-After, or the rate-limit reset) and lowers
 * the rate (multiplicative decrease, once per round: the 429s of calls already
 * in flight are one signal, not many); the rate then climbs back (additive
 * increase) for as long as no 429 comes. A response saying nothing remains
 * before the reset pauses the vendor the same way, before it refuses.
 *
 * This is the in-process form; RedisRateState keeps the same state in Redis
 * for every instance, with the same arithmetic in Lua (keep them in step).
 */
export interface AdaptiveRateTuning {
  /** The configured rate: never exceeded. */
  ceilingPerSec: number;
  /** Factor applied on a 429. @default 0.7 */
  decrease: number;
  /** Rate regained per second without a 429. @default ceiling / 40 */
  increasePerSecPerSec: number;
  /** Never below this. @default ceiling / 100, at least 0.5 */
  floorPerSec: number;
}

export function adaptiveRateTuning(ceilingPerSec: number): AdaptiveRateTuning {
  return { ceilingPerSec, decrease: 0.7, increasePerSecPerSec: ceilingPerSec / 40, floorPerSec: Math.max(0.5, ceilingPerSec / 100) };
}

/** A pause that starts within this long after the last decrease is the same round of 429s. */
export const MIN_ROUND_MS = 1000;

export class AdaptiveRate {
  /** The rate right after the last decrease, and when that was. */
  private base: number;
  private baseAt = 0;
  private decreasedAt = Number.NEGATIVE_INFINITY;
  private pausedUntil = 0;

  constructor(
    readonly tuning: AdaptiveRateTuning,
    // Monotonic, as the token bucket's: a pause must not last as long as the wall clock is stepped back.
    private readonly now: () => number = () => performance.now(),
  ) {
    this.base = tuning.ceilingPerSec;
  }

  /** The rate to send at now: the learned one plus what it has climbed back since. */
  ratePerSec(now = this.now()): number {
    const { ceilingPerSec, increasePerSecPerSec } = this.tuning;
    return Math.min(ceilingPerSec, this.base + (Math.max(0, now - this.baseAt) / 1000) * increasePerSecPerSec);
  }

  /** Milliseconds until the vendor accepts calls again; 0 when it does now. */
  pauseLeftMs(now = this.now()): number {
    return Math.max(0, this.pausedUntil - now);
  }

  /** A 429: pause for `pauseMs`, and lower the rate unless this round already did. */
  throttled(pauseMs: number): void {
    const now = this.now();
    this.pausedUntil = Math.max(this.pausedUntil, now + pauseMs);
    if (now - this.decreasedAt < Math.max(MIN_ROUND_MS, pauseMs)) return;
    this.base = Math.max(this.tuning.floorPerSec, this.ratePerSec(now) * this.tuning.decrease);
    this.baseAt = now;
    this.decreasedAt = now;
  }

  /** The vendor said nothing remains until its reset: pause until then, without a 429 to learn from. */
  exhausted(pauseMs: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, this.now() + pauseMs);
  }

  /** What a shared store reported (another instance's 429s), so this instance's view follows it. */
  adopt(ratePerSec: number, pauseLeftMs: number): void {
    const now = this.now();
    if (Math.abs(ratePerSec - this.ratePerSec(now)) > 1e-9) {
      this.base = ratePerSec;
      this.baseAt = now;
    }
    if (pauseLeftMs > 0) this.pausedUntil = Math.max(this.pausedUntil, now + pauseLeftMs);
  }
}
