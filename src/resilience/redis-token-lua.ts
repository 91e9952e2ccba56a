/**
 * The Lua the shared rate limits are made of: one token bucket (TokenBucket's,
 * in process) kept in a Redis hash, read, refilled and written by a single
 * script on Redis's own clock. RedisRateState books one token a call
 * (BOOK_TOKEN), RedisTokenLease takes a batch (REFILL_TOKENS).
 */

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
if at > now then
  -- Redis's clock went back (its host's NTP stepping a clock that ran ahead, a restore): refilled from now on, not
  -- from when the clock reads the last write's time again (a refused call writes nothing, so that was never).
  at = now
  redis.call('HSET', KEYS[1], 'at', tostring(now))
end
tokens = math.min(burst, tokens + (now - at) * per_ms)
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
