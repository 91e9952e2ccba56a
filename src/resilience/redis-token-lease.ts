import { declareLuaCommand, withLuaCommand, type RedisClient } from '../redis.js';
import { REDIS_NOW, REFILL_TOKENS } from './redis-token-lua.js';

/**
 * Lua: refill the bucket in hash KEYS[1] (the same fields as RedisRateState's bucket)
 * at ARGV[1] tokens a second up to ARGV[2], then take up to ARGV[3] tokens, at
 * least one. Returns how many were taken, or minus the ms until one will be
 * there (nothing taken).
 */
const TAKE_TOKENS = `${REDIS_NOW}
local per_ms = tonumber(ARGV[1]) / 1000
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
${REFILL_TOKENS}
if tokens < 1 then
  return -math.max(1, math.ceil((1 - tokens) / per_ms))
end
local taken = math.min(want, math.floor(tokens))
tokens = tokens - taken
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / per_ms) + 60000)
return taken
`;

declareLuaCommand('takeTokens', { numberOfKeys: 1, lua: TAKE_TOKENS });

type WithTakeTokens = RedisClient & { takeTokens(key: string, ratePerSec: number, burst: number, want: number): Promise<number> };

/**
 * Tokens taken from a bucket in Redis a batch at a time: one round trip buys
 * up to `batch` tokens, spent locally until they run out or `leaseMs` passes
 * (what is left then is dropped, never handed back: the shared budget is
 * never exceeded, only slightly under-used). A busy caller costs one Redis
 * call per batch instead of one per request; a slow one (a batch of 1) the
 * same as before.
 */
export class RedisTokenLease {
  private readonly redis: WithTakeTokens;
  private tokens = 0;
  private until = 0;
  /** The batch being fetched: callers arriving meanwhile wait for it rather than each fetching their own. */
  private refill: Promise<number> | null = null;

  constructor(
    redis: RedisClient,
    private readonly key: string,
    private readonly ratePerSec: number,
    private readonly burst: number,
    private readonly batch: number,
    private readonly leaseMs: number,
  ) {
    this.redis = withLuaCommand<WithTakeTokens>(redis, 'takeTokens');
  }

  /** Spends a token of the batch in hand, if there is one: no Redis call, no promise. */
  takeLocal(): boolean {
    if (this.tokens > 0 && performance.now() < this.until) {
      this.tokens--;
      return true;
    }
    return false;
  }

  /** 0 when a token was had (locally or from Redis), else minus the ms until one will be there. */
  async take(): Promise<number> {
    for (;;) {
      if (this.takeLocal()) return 0;
      if (this.refill) {
        const taken = await this.refill;
        if (taken < 0) return taken;
        continue;
      }
      this.refill = this.fetchBatch().finally(() => (this.refill = null));
    }
  }

  private async fetchBatch(): Promise<number> {
    const taken = await this.redis.takeTokens(this.key, this.ratePerSec, this.burst, this.batch);
    if (taken > 0) {
      this.tokens = taken;
      this.until = performance.now() + this.leaseMs;
    }
    return taken;
  }
}
