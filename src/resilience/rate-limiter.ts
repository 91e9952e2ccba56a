import { setTimeout as sleep } from 'node:timers/promises';
import { EventEmitter } from 'cockatiel';
import { SourceError, type SourceName } from '../errors.js';
import type { MaybePromise } from '../maybe-promise.js';
import { optionalRedisPolicy, type RedisCallPolicy, type RedisConnection } from '../redis.js';
import { AdaptiveRate, adaptiveRateTuning, MIN_ROUND_MS } from './adaptive-rate.js';
import type { Deadline } from './deadline.js';
import { RedisRateState } from './redis-rate-state.js';
import { TokenBucket } from './token-bucket.js';

export type RateLimiterMode = 'SHARED' | 'LOCAL';

/** How late after its booked slot a waiting call may still leave. */
const LATE_MS = 50;
/** Added to every pause: the vendor's clock may run a little ahead of ours, and its window must have turned when we call. */
const PAUSE_MARGIN_MS = 50;
/**
 * The longest a success saying no calls remain pauses the source. Past it one
 * call goes: a vendor that is really out refuses it with a 429, whose own pause
 * (up to MAX_PAUSE_MS) then holds; one whose header was wrong answers it, and
 * is not believed again until it refuses (see answered).
 */
export const EXHAUSTED_PAUSE_CAP_MS = 10_000;

/** A vendor's word that no calls remain: when it was said, and until when. */
export interface ExhaustionClaim {
  saidAt: number;
  until: number;
}

export interface RateLimitEvent {
  source: SourceName;
  waitMs: number;
  mode: RateLimiterMode;
}

export interface ThrottleEvent {
  source: SourceName;
  /** `429`: the vendor refused a call; `exhausted`: its headers said nothing remains until the reset. */
  signal: '429' | 'exhausted';
  pauseMs: number;
  /** The learned rate after it. */
  ratePerSec: number;
}

interface Reservation {
  /** Negative: refused, that much wait was needed. */
  waitMs: number;
  /** The wait is the vendor's pause, after which the call asks again. */
  paused: boolean;
  mode: RateLimiterMode;
}

/**
 * A source's rate limit. The configured rate is a ceiling; under it the
 * source paces to what it has learned of the vendor (AdaptiveRate: pause on a
 * 429 or an exhausted window, multiplicative decrease, additive increase).
 * With Redis the bucket, the pause and the learned rate are one for every
 * instance (RedisRateState); without Redis, or while Redis does not answer,
 * this instance's own. A call waits for its turn while the wait fits the
 * request's deadline, else fails at once with SOURCE_RATE_LIMITED (local: no
 * upstream call was made) and the seconds until it could go.
 */
export class SourceRateLimiter {
  private readonly learned: AdaptiveRate;
  private readonly local: TokenBucket;
  private readonly redisPolicy: RedisCallPolicy = optionalRedisPolicy(250).policy;
  private readonly shared: RedisRateState | undefined;
  private readonly waitEmitter = new EventEmitter<RateLimitEvent>();
  private readonly rejectEmitter = new EventEmitter<RateLimitEvent>();
  private readonly throttleEmitter = new EventEmitter<ThrottleEvent>();
  /** A call waited for a token or for the vendor's pause. */
  readonly onWait = this.waitEmitter.addListener;
  /** A call was refused: its turn was further away than its deadline. */
  readonly onReject = this.rejectEmitter.addListener;
  /** The vendor pushed back (a 429, or no requests remaining). */
  readonly onThrottle = this.throttleEmitter.addListener;
  /** The vendor's last word that no calls remain, while a call sent after it could still prove it wrong. */
  private exhaustion: ExhaustionClaim | undefined;
  /** False once a vendor answered a call it had said it would not take, until it next refuses one. */
  private believesExhaustion = true;

  constructor(
    private readonly source: SourceName,
    private readonly ceilingPerSec: number,
    private readonly burst: number,
    private readonly redis: RedisConnection | null,
  ) {
    const tuning = adaptiveRateTuning(ceilingPerSec);
    this.learned = new AdaptiveRate(tuning);
    this.local = new TokenBucket(burst);
    this.shared = redis ? new RedisRateState(redis.client, `${redis.keyPrefix}rl:${source}`, tuning, burst, MIN_ROUND_MS) : undefined;
  }

  get mode(): RateLimiterMode {
    // A Redis refusing writes refuses the bucket's script too: the calls are counted here.
    return this.shared && this.redis?.state === 'ok' ? 'SHARED' : 'LOCAL';
  }

  /** The rate this source sends at now (the learned one, at most the configured one), as this instance last knew it. */
  get ratePerSec(): number {
    return this.learned.ratePerSec();
  }

  /**
   * Waits for the vendor's pause and a token. A call that wakes more than
   * LATE_MS after its slot (event-loop stalls under load) gives the slot up and
   * books again: the bucket paces when calls leave, not only when they were
   * booked, so late calls cannot bunch into one of the vendor's windows.
   *
   * No promise when the call may go at once on this instance's own state (no
   * pause, a token in the bucket): the usual case makes no promise to wait on.
   */
  acquire(deadline: Deadline): MaybePromise<void> {
    if (this.mode === 'LOCAL' && this.learned.pauseLeftMs() === 0 && this.takeLocal(0) === 0) return undefined;
    return this.waitForTurn(deadline);
  }

  private async waitForTurn(deadline: Deadline): Promise<void> {
    for (;;) {
      // Leave the call itself some of the deadline.
      const maxWaitMs = Math.max(0, deadline.remainingMs() - 50);
      const { waitMs, paused, mode } = await this.reserve(maxWaitMs);
      if (waitMs < 0) {
        this.rejectEmitter.emit({ source: this.source, waitMs: -waitMs, mode });
        throw new SourceError({
          code: 'SOURCE_RATE_LIMITED',
          source: this.source,
          retryable: true,
          local: true,
          retryAfterSeconds: Math.max(1, Math.ceil(-waitMs / 1000)),
          detail: paused
            ? `the vendor asked for a pause ${-waitMs} ms longer than the deadline`
            : `own rate limit (${mode.toLowerCase()}): a token is ${-waitMs} ms away, beyond the deadline`,
        });
      }
      if (waitMs === 0) return;
      this.waitEmitter.emit({ source: this.source, waitMs, mode });
      const due = performance.now() + waitMs;
      try {
        await sleep(waitMs, undefined, { signal: deadline.signal });
      } catch {
        throw new SourceError({ code: 'SOURCE_TIMEOUT', source: this.source, retryable: true, local: true, detail: 'deadline passed while waiting for the rate limit' });
      }
      if (paused || performance.now() - due > LATE_MS) continue;
      // A 429 may have come while this call slept on its token (booked before it): then it waits for the pause too.
      if ((await this.pauseLeftMs()) === 0) return;
    }
  }

  /** The vendor's pause left: this instance's own knowledge, and in SHARED mode every instance's. */
  private async pauseLeftMs(): Promise<number> {
    const local = this.learned.pauseLeftMs();
    if (local > 0 || this.mode !== 'SHARED') return local;
    try {
      const shared = this.shared!;
      const left = await this.redisPolicy.execute(() => shared.pauseLeftMs());
      if (left > 0) this.learned.exhausted(left);
      return left;
    } catch {
      return 0;
    }
  }

  /** A 429: every call to this vendor waits `pauseMs` (here at once, on other instances through Redis), and the rate is lowered. */
  throttled(pauseMs: number): void {
    this.believesExhaustion = true;
    this.exhaustion = undefined;
    this.pushedBack('429', pauseMs);
  }

  /**
   * The vendor's headers said nothing remains for `pauseMs`: wait (at most
   * EXHAUSTED_PAUSE_CAP_MS) instead of being refused. Not believed from a
   * vendor whose headers said so before and were wrong.
   */
  exhausted(pauseMs: number, now = performance.now()): void {
    if (!this.believesExhaustion) return;
    this.exhaustion = { saidAt: now, until: now + pauseMs };
    this.pushedBack('exhausted', Math.min(pauseMs, EXHAUSTED_PAUSE_CAP_MS));
  }

  /**
   * A call sent at `sentAt` (performance.now()) was answered, not refused. Sent after the vendor
   * said no calls remained and before the moment it named, it proves that
   * header wrong: returns the claim, and exhaustion headers are not believed
   * again until the vendor refuses a call (a header that says 0 on every
   * answer, or means "no limit", would otherwise pause a healthy vendor).
   */
  answered(sentAt: number): ExhaustionClaim | undefined {
    const claim = this.exhaustion;
    if (claim === undefined || sentAt <= claim.saidAt) return undefined;
    this.exhaustion = undefined;
    if (sentAt >= claim.until) return undefined;
    this.believesExhaustion = false;
    return claim;
  }

  private pushedBack(signal: ThrottleEvent['signal'], vendorPauseMs: number): void {
    const pauseMs = vendorPauseMs + PAUSE_MARGIN_MS;
    if (signal === '429') this.learned.throttled(pauseMs);
    else this.learned.exhausted(pauseMs);
    this.throttleEmitter.emit({ source: this.source, signal, pauseMs, ratePerSec: this.learned.ratePerSec() });
    if (this.mode === 'SHARED') {
      const shared = this.shared!;
      // This instance already waits; the others learn it as soon as Redis has it. Redis away: they learn it from their own 429s.
      this.redisPolicy.execute(() => shared.throttle(pauseMs, signal === '429')).catch(() => undefined);
    }
  }

  private async reserve(maxWaitMs: number): Promise<Reservation> {
    // The pause this instance knows of (its own 429s, at once) comes first.
    const pause = this.learned.pauseLeftMs();
    if (pause > 0) return { waitMs: pause > maxWaitMs ? -pause : pause, paused: true, mode: this.mode };
    if (this.mode === 'SHARED') {
      try {
        const shared = this.shared!;
        const taken = await this.redisPolicy.execute(() => shared.take(maxWaitMs));
        this.learned.adopt(taken.ratePerSec, taken.pauseLeftMs);
        return { waitMs: taken.waitMs, paused: taken.paused, mode: 'SHARED' };
      } catch {
        // Redis did not answer in time (or has not lately: its breaker is open): this call uses the local state.
      }
    }
    return { waitMs: this.takeLocal(maxWaitMs), paused: false, mode: 'LOCAL' };
  }

  /** A token from this instance's bucket at the learned rate (its burst scaled with it): the wait booked, or negative (nothing booked) past `maxWaitMs`. */
  private takeLocal(maxWaitMs: number): number {
    const rate = this.learned.ratePerSec();
    return this.local.reserve(maxWaitMs, rate, Math.max(1, (this.burst * rate) / this.ceilingPerSec));
  }
}
