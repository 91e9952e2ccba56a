import { declareLuaCommand, withLuaCommand, type RedisClient } from '../redis.js';

/** Lua: `now` in ms on Redis's own clock (so instances' clocks need not agree). */
export const REDIS_NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/**
 * Lua: the bucket in hash KEYS[1] refilled at `per_ms` tokens a ms up to
 * `burst` since it was last written; sets `tokens`. Needs `now`, `per_ms`, `burst`.
 */
export const REFILL_TOKENS = `
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
tokens = math.min(burst, tokens + math.max(0, now - at) * per_ms)
`;

/**
 * Lua: refill (REFILL_TOKENS), then book a token; sets `wait`: the ms to wait
 * for the booked token, or minus the wait that would have been needed when it
 * exceeds `max_wait` (nothing booked). Needs `now`, `per_ms`, `burst`, `max_wait`.
 */
export const BOOK_TOKEN = `${REFILL_TOKENS}
local wait = 0
if tokens < 1 then wait = math.ceil((1 - tokens) / per_ms) end
if wait > max_wait then
  wait = -math.max(1, wait)
else
  tokens = tokens - 1
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
  redis.call('PEXPIRE', KEYS[1], math.ceil(burst / per_ms) + wait + 60000)
end
`;

/**
 * The same token bucket as TokenBucket, kept in Redis so every instance draws
 * from one: a single Lua script reads, refills, books and writes atomically.
 * Returns the wait in ms for the booked token, or minus the wait that would
 * have been needed when it exceeds maxWaitMs (nothing booked).
 */
const TAKE_TOKEN = `${REDIS_NOW}
local per_ms = tonumber(ARGV[1]) / 1000
local burst = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
${BOOK_TOKEN}
return wait
`;

declareLuaCommand('takeToken', { numberOfKeys: 1, lua: TAKE_TOKEN });

type WithTakeToken = RedisClient & { takeToken(key: string, ratePerSec: number, burst: number, maxWaitMs: number): Promise<number> };

export class RedisTokenBucket {
  private readonly redis: WithTakeToken;

  constructor(
    redis: RedisClient,
    private readonly key: string,
    private readonly ratePerSec: number,
    private readonly burst: number,
  ) {
    this.redis = withLuaCommand<WithTakeToken>(redis, 'takeToken');
  }

  reserve(maxWaitMs: number): Promise<number> {
    return this.redis.takeToken(this.key, this.ratePerSec, this.burst, Math.floor(maxWaitMs));
  }
}
