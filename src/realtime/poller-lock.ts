import { randomBytes } from 'node:crypto';
import type { RedisConnection } from '../redis.js';

// Takes the lock when free, renews it when ours: one round trip a pass, one key.
const HOLD = `local v = redis.call('GET', KEYS[1])
if v == false then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/**
 * Which instance does a job that must run once across instances (a change
 * feed's poll): the one holding a Redis key, renewed every pass and lost when
 * its holder stops renewing (`ttlMs`), so another takes over. Without Redis,
 * or while it is unreachable, every instance holds it: the job runs more
 * than once rather than not at all.
 */
export class PollerLock {
  private readonly token = randomBytes(12).toString('base64url');

  constructor(
    private readonly redis: RedisConnection | null,
    private readonly name: string,
    private readonly ttlMs: number,
  ) {}

  async hold(): Promise<boolean> {
    if (!this.redis?.available) return true;
    try {
      return (await this.redis.client.eval(HOLD, 1, this.redis.key(this.name), this.token, String(this.ttlMs))) === 1;
    } catch {
      return true;
    }
  }

  /** Hands the job over at once (a deploy's old instance), instead of after the lock's TTL. */
  async release(): Promise<void> {
    if (!this.redis?.available) return;
    await this.redis.client.eval(RELEASE, 1, this.redis.key(this.name), this.token).catch(() => undefined);
  }
}
