import { setTimeout as sleep } from 'node:timers/promises';
import { EventEmitter, type IPolicy } from 'cockatiel';
import { SourceError, type SourceName } from '../errors.js';
import { optionalRedisPolicy, type RedisConnection } from '../redis.js';
import type { Deadline } from './deadline.js';
import { RedisTokenBucket } from './redis-token-bucket.js';
import { TokenBucket } from './token-bucket.js';

export type RateLimiterMode = 'SHARED' | 'LOCAL';

/** How late after its booked slot a waiting call may still leave. */
const LATE_MS = 50;

export interface RateLimitEvent {
  source: SourceName;
  waitMs: number;
  mode: RateLimiterMode;
}

/**
 * A source's own rate limit, set below the vendor's. With Redis it is one
 * bucket for every instance (RedisTokenBucket); without Redis, or while Redis
 * does not answer, this instance's TokenBucket. A call waits for its token
 * while the wait fits the request's deadline, else fails at once with
 * SOURCE_RATE_LIMITED (local: no upstream call was made).
 */
export class SourceRateLimiter {
  private readonly local: TokenBucket;
  private readonly redisPolicy: IPolicy = optionalRedisPolicy(250).policy;
  private readonly shared: RedisTokenBucket | undefined;
  private readonly waitEmitter = new EventEmitter<RateLimitEvent>();
  private readonly rejectEmitter = new EventEmitter<RateLimitEvent>();
  /** A call waited for a token. */
  readonly onWait = this.waitEmitter.addListener;
  /** A call was refused: its token was further away than its deadline. */
  readonly onReject = this.rejectEmitter.addListener;

  constructor(
    private readonly source: SourceName,
    ratePerSec: number,
    burst: number,
    private readonly redis: RedisConnection | null,
  ) {
    this.local = new TokenBucket(ratePerSec, burst);
    this.shared = redis ? new RedisTokenBucket(redis.client, redis.key('ratelimit', source), ratePerSec, burst) : undefined;
  }

  get mode(): RateLimiterMode {
    return this.shared && this.redis?.available ? 'SHARED' : 'LOCAL';
  }

  /**
   * Books a token and waits for it. A call that wakes more than LATE_MS after
   * its slot (event-loop stalls under load) gives the slot up and books again:
   * the bucket paces when calls leave, not only when they were booked, so
   * late calls cannot bunch into one of the vendor's windows.
   */
  async acquire(deadline: Deadline): Promise<void> {
    for (;;) {
      // Leave the call itself some of the deadline.
      const maxWaitMs = Math.max(0, deadline.remainingMs() - 50);
      const { waitMs, mode } = await this.reserve(maxWaitMs);
      if (waitMs < 0) {
        this.rejectEmitter.emit({ source: this.source, waitMs: -waitMs, mode });
        throw new SourceError({
          code: 'SOURCE_RATE_LIMITED',
          source: this.source,
          retryable: true,
          local: true,
          retryAfterSeconds: Math.ceil(-waitMs / 1000),
          detail: `own rate limit (${mode.toLowerCase()}): a token is ${-waitMs} ms away, beyond the deadline`,
        });
      }
      if (waitMs === 0) return;
      this.waitEmitter.emit({ source: this.source, waitMs, mode });
      const due = Date.now() + waitMs;
      try {
        await sleep(waitMs, undefined, { signal: deadline.signal });
      } catch {
        throw new SourceError({ code: 'SOURCE_TIMEOUT', source: this.source, retryable: true, local: true, detail: 'deadline passed while waiting for a rate-limit token' });
      }
      if (Date.now() - due <= LATE_MS) return;
    }
  }

  private async reserve(maxWaitMs: number): Promise<{ waitMs: number; mode: RateLimiterMode }> {
    if (this.mode === 'SHARED') {
      try {
        const shared = this.shared!;
        return { waitMs: await this.redisPolicy.execute(() => shared.reserve(maxWaitMs)), mode: 'SHARED' };
      } catch {
        // Redis did not answer in time (or has not lately: its breaker is open): this call uses the local bucket.
      }
    }
    return { waitMs: this.local.reserve(maxWaitMs), mode: 'LOCAL' };
  }
}
