import { setTimeout as sleep } from 'node:timers/promises';
import { EventEmitter } from 'cockatiel';
import { SourceError, type SourceName } from '../errors.js';
import type { RedisConnection } from '../redis.js';
import type { Deadline } from './deadline.js';
import { RedisTokenBucket } from './redis-token-bucket.js';
import { TokenBucket } from './token-bucket.js';

export type RateLimiterMode = 'SHARED' | 'LOCAL';

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

  async acquire(deadline: Deadline): Promise<void> {
    // Leave the call itself some of the deadline.
    const maxWaitMs = Math.max(0, deadline.remainingMs() - 50);
    let mode = this.mode;
    let waitMs: number;
    if (mode === 'SHARED') {
      try {
        waitMs = await this.shared!.reserve(maxWaitMs);
      } catch {
        mode = 'LOCAL';
        waitMs = this.local.reserve(maxWaitMs);
      }
    } else {
      waitMs = this.local.reserve(maxWaitMs);
    }
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
    if (waitMs > 0) {
      this.waitEmitter.emit({ source: this.source, waitMs, mode });
      try {
        await sleep(waitMs, undefined, { signal: deadline.signal });
      } catch {
        throw new SourceError({ code: 'SOURCE_TIMEOUT', source: this.source, retryable: true, local: true, detail: 'deadline passed while waiting for a rate-limit token' });
      }
    }
  }
}
