import { declareLuaCommand, withLuaCommand, type RedisClient } from '../redis.js';
import type { AdaptiveRateTuning } from './adaptive-rate.js';
import { BOOK_TOKEN, REDIS_NOW } from './redis-token-lua.js';

/**
 * A source's rate state shared by every instance: the token bucket, the
 * vendor's pause and the learned rate, as AdaptiveRate and TokenBucket keep
 * them in process, in two hashes under one hash tag (`{gw:rl:notifications}`)
 * so each script touches one slot and works on Redis Cluster. Each script
 * reads, computes and writes atomically on Redis's own clock.
 */

/**
 * A vendor's pause is at most MAX_PAUSE_MS (5 min, src/sources/rate-limit-headers.ts): one further ahead than this
 * was written before Redis's clock went back.
 */
const PAUSE_NEVER_BEYOND_MS = 10 * 60_000;

/**
 * The learned rate at `now`: its base plus what it climbed back since, capped by the ceiling. Sets `rate`, `paused`,
 * `decreased_at`. Instants written before Redis's clock went back (its host's NTP, a restore) are moved to now: else
 * the climb would stay frozen, and a pause last, for as long as the step.
 */
const LEARNED = `
local ceiling = tonumber(ARGV[1])
local step = tonumber(ARGV[2])
local l = redis.call('HMGET', KEYS[2], 'base', 'base_at', 'paused_until', 'decreased_at')
local rate = ceiling
local paused = tonumber(l[3]) or 0
local decreased_at = tonumber(l[4]) or -1e15
if l[1] then
  local base_at = tonumber(l[2])
  if base_at > now then
    base_at = now
    redis.call('HSET', KEYS[2], 'base_at', tostring(now))
  end
  rate = math.min(ceiling, tonumber(l[1]) + (now - base_at) / 1000 * step)
end
if decreased_at > now then
  decreased_at = now
  redis.call('HSET', KEYS[2], 'decreased_at', tostring(now))
end
if paused - now > ${PAUSE_NEVER_BEYOND_MS} then
  paused = now
  redis.call('HSET', KEYS[2], 'paused_until', tostring(now))
end
`;

/**
 * KEYS: bucket, learned. ARGV: ceiling, step, burst, max_wait.
 * Returns {wait ms (negative: refused, that much was needed), 1 when the wait
 * is the vendor's pause (ask again after it) else 0, the learned rate, the
 * pause left}.
 */
const TAKE = `${REDIS_NOW}${LEARNED}
local burst = math.max(1, tonumber(ARGV[3]) * rate / ceiling)
local max_wait = tonumber(ARGV[4])
if paused > now then
  local wait = paused - now
  if wait > max_wait then return {-wait, 1, tostring(rate), wait} end
  return {wait, 1, tostring(rate), wait}
end
local per_ms = rate / 1000
${BOOK_TOKEN}
return {wait, 0, tostring(rate), 0}
`;

/**
 * KEYS: bucket (unused), learned. ARGV: ceiling, step, pause ms, decrease factor (1: none, for
 * "nothing remains"), floor, min round ms. Returns the learned rate.
 */
const THROTTLE = `${REDIS_NOW}${LEARNED}
local pause = tonumber(ARGV[3])
local decrease = tonumber(ARGV[4])
local floor = tonumber(ARGV[5])
local round = math.max(tonumber(ARGV[6]), pause)
paused = math.max(paused, now + pause)
redis.call('HSET', KEYS[2], 'paused_until', tostring(paused))
if decrease < 1 and now - decreased_at >= round then
  rate = math.max(floor, rate * decrease)
  redis.call('HSET', KEYS[2], 'base', tostring(rate), 'base_at', tostring(now), 'decreased_at', tostring(now))
end
-- Kept while it matters: the pause, and the climb back to the ceiling.
redis.call('PEXPIRE', KEYS[2], math.ceil(pause + (ceiling - rate) / step * 1000) + 60000)
return tostring(rate)
`;

/** KEYS: learned. Returns the pause left in ms (0: none). */
const PAUSE_LEFT = `${REDIS_NOW}
local paused = tonumber(redis.call('HGET', KEYS[1], 'paused_until')) or 0
if paused - now > ${PAUSE_NEVER_BEYOND_MS} then return 0 end
return math.max(0, paused - now)
`;

declareLuaCommand('rlTake', { numberOfKeys: 2, lua: TAKE });
declareLuaCommand('rlThrottle', { numberOfKeys: 2, lua: THROTTLE });
declareLuaCommand('rlPauseLeft', { numberOfKeys: 1, lua: PAUSE_LEFT });

type WithScripts = RedisClient & {
  rlPauseLeft(learned: string): Promise<number>;
  rlTake(bucket: string, learned: string, ceiling: number, step: number, burst: number, maxWaitMs: number): Promise<[number, number, string, number]>;
  rlThrottle(bucket: string, learned: string, ceiling: number, step: number, pauseMs: number, decrease: number, floor: number, roundMs: number): Promise<string>;
};

export interface SharedTake {
  /** Wait in ms; negative: refused (the wait that would have been needed). */
  waitMs: number;
  /** The wait is the vendor's pause: after it, ask again. */
  paused: boolean;
  ratePerSec: number;
  pauseLeftMs: number;
}

export class RedisRateState {
  private readonly redis: WithScripts;
  private readonly bucketKey: string;
  private readonly learnedKey: string;

  constructor(
    redis: RedisClient,
    /** The hash tag, e.g. `gw:rl:notifications`: every key of this source's state lives under `{tag}`. */
    tag: string,
    private readonly tuning: AdaptiveRateTuning,
    private readonly burst: number,
    private readonly minRoundMs: number,
  ) {
    withLuaCommand(redis, 'rlThrottle');
    withLuaCommand(redis, 'rlPauseLeft');
    this.redis = withLuaCommand<WithScripts>(redis, 'rlTake');
    this.bucketKey = `{${tag}}:bucket`;
    this.learnedKey = `{${tag}}:learned`;
  }

  async take(maxWaitMs: number): Promise<SharedTake> {
    const { ceilingPerSec, increasePerSecPerSec } = this.tuning;
    const [waitMs, paused, rate, pauseLeftMs] = await this.redis.rlTake(this.bucketKey, this.learnedKey, ceilingPerSec, increasePerSecPerSec, this.burst, Math.floor(maxWaitMs));
    return { waitMs: Number(waitMs), paused: Number(paused) === 1, ratePerSec: Number(rate), pauseLeftMs: Number(pauseLeftMs) };
  }

  /** The vendor's pause left, as every instance knows it. */
  async pauseLeftMs(): Promise<number> {
    return Number(await this.redis.rlPauseLeft(this.learnedKey));
  }

  /** A 429 (decrease) or "nothing remains" (no decrease): pause every instance for `pauseMs`. Resolves to the learned rate. */
  async throttle(pauseMs: number, decrease: boolean): Promise<number> {
    const { ceilingPerSec, increasePerSecPerSec, floorPerSec } = this.tuning;
    return Number(
      await this.redis.rlThrottle(
        this.bucketKey,
        this.learnedKey,
        ceilingPerSec,
        increasePerSecPerSec,
        Math.ceil(pauseMs),
        decrease ? this.tuning.decrease : 1,
        floorPerSec,
        this.minRoundMs,
      ),
    );
  }
}
