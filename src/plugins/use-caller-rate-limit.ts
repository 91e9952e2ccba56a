import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { LRUCache } from 'lru-cache';
import { lruOfEntries } from '../cache/lru-of-entries.js';
import type { Viewer } from '../viewer.js';
import { callerLimitMessage } from '../errors.js';
import type { Metrics } from '../observability/metrics.js';
import { optionalRedisPolicy, type RedisCallPolicy, type RedisConnection } from '../redis.js';
import { RedisTokenLease } from '../resilience/redis-token-lease.js';
import { TokenBucket } from '../resilience/token-bucket.js';

const LEASE_MS = 1000;

/**
 * A token bucket per caller (the token's subject) on the server itself, so one
 * abusive client cannot spend the vendors' limits for everyone. Shared by all
 * instances through Redis when configured (taken a batch of 100 ms of the
 * caller's rate per call, RedisTokenLease: a busy caller costs one Redis call
 * per batch, not per request), per instance otherwise or while Redis is away. Requests over
 * it answer 429 with Retry-After and make no upstream call.
 */
export class CallerRateLimiter {
  private readonly local: LRUCache<string, TokenBucket>;
  private readonly leases: LRUCache<string, RedisTokenLease>;
  private readonly redisPolicy: RedisCallPolicy = optionalRedisPolicy(250).policy;
  /** Tokens a Redis call takes for a caller: 100 ms of its rate (1 for a slow caller, as before), spent within a second. */
  private readonly batch: number;

  constructor(
    private readonly perSec: number,
    private readonly burst: number,
    private readonly redis: RedisConnection | null,
  ) {
    this.local = lruOfEntries(100_000, { ttl: Math.max(60_000, (burst / perSec) * 2000), ttlAutopurge: false });
    this.leases = lruOfEntries(100_000, { ttl: 60_000, ttlAutopurge: false });
    this.batch = Math.max(1, Math.min(Math.floor(burst), Math.floor(perSec / 10)));
  }

  /** 0 when the caller may go on, else the seconds until it may. */
  async retryAfterSeconds(subject: string): Promise<number> {
    let waitMs: number | undefined;
    if (this.redis?.available) {
      try {
        let lease = this.leases.get(subject);
        if (!lease) this.leases.set(subject, (lease = new RedisTokenLease(this.redis.client, this.redis.key('caller', subject), this.perSec, this.burst, this.batch, LEASE_MS)));
        // A token of the batch in hand costs nothing more; only a Redis call goes through the policy (its timer and breaker).
        if (lease.takeLocal()) return 0;
        const leased = lease;
        waitMs = await this.redisPolicy.execute(() => leased.take());
      } catch {
        // Redis did not answer in time (or its breaker is open): this request is counted locally.
      }
    }
    if (waitMs === undefined) {
      let bucket = this.local.get(subject);
      if (!bucket) this.local.set(subject, (bucket = new TokenBucket(this.burst)));
      waitMs = bucket.reserve(0, this.perSec, this.burst);
    }
    return waitMs < 0 ? Math.max(1, Math.ceil(-waitMs / 1000)) : 0;
  }
}

export interface CallerRateLimitOptions {
  /** The per-caller budget (shared through Redis when it has one). */
  limiter: CallerRateLimiter;
  /** Counts refusals (gateway_caller_rate_limited_total). */
  metrics: Metrics;
}

/**
 * A caller over its budget gets 429 with Retry-After and RATE_LIMITED, and
 * reaches no upstream. Runs after authentication (it needs the viewer):
 * placed after useJwtAuth.
 */
export function useCallerRateLimit({ limiter, metrics }: CallerRateLimitOptions): Plugin<{ viewer: Viewer }> {
  return {
    async onContextBuilding({ context }) {
      const retryAfter = await limiter.retryAfterSeconds(context.viewer.userId);
      if (retryAfter === 0) return;
      metrics.callerRejections.inc();
      throw new GraphQLError(callerLimitMessage(retryAfter), {
        extensions: { code: 'RATE_LIMITED', retryAfterSeconds: retryAfter, http: { status: 429, headers: { 'retry-after': String(retryAfter) } } },
      });
    },
  };
}
