import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adaptiveRateTuning } from '../src/resilience/adaptive-rate.js';
import { RedisRateState } from '../src/resilience/redis-rate-state.js';
import { RedisTokenLease } from '../src/resilience/redis-token-lease.js';
import { TokenBucket } from '../src/resilience/token-bucket.js';
import { newRedisClient } from '../src/redis.js';
import { describeWithRedis, TestRedis } from './helpers/redis.js';

describe('TokenBucket (in process, on a fake clock)', () => {
  it('spends its burst at once, then books one token every 1/rate s; refuses a wait beyond maxWait and books nothing', () => {
    let now = 0;
    const bucket = new TokenBucket(2, () => now);
    expect([bucket.reserve(1000, 10, 2), bucket.reserve(1000, 10, 2)]).toEqual([0, 0]);
    expect(bucket.reserve(1000, 10, 2)).toBe(100);
    expect(bucket.reserve(1000, 10, 2)).toBe(200);
    // The next would be 300 ms away: refused, and not booked (the one after is still 300 ms away).
    expect(bucket.reserve(250, 10, 2)).toBe(-300);
    expect(bucket.reserve(1000, 10, 2)).toBe(300);
    now = 10_000;
    // Refilled, but never above the burst.
    expect([bucket.reserve(0, 10, 2), bucket.reserve(0, 10, 2), bucket.reserve(0, 10, 2)]).toEqual([0, 0, -100]);
  });

  it('follows the rate it is given each call (the learned rate)', () => {
    let now = 0;
    const bucket = new TokenBucket(1, () => now);
    expect(bucket.reserve(10_000, 20, 1)).toBe(0);
    expect(bucket.reserve(10_000, 20, 1)).toBe(50);
    // The rate given applies from the last call on: 50 ms at 2/s refill 0.1 of the one token owed, so the next
    // is 1.9 tokens, 950 ms, away. A lowered rate slows what is already booked, as it should after a 429.
    now = 50;
    expect(bucket.reserve(10_000, 2, 1)).toBe(950);
  });
});

describeWithRedis('the token buckets in Redis', () => {
  const server = new TestRedis();
  let redis: Redis;
  beforeAll(async () => {
    await server.start();
    redis = new Redis(server.url, { lazyConnect: false });
  });
  afterAll(async () => {
    redis?.disconnect();
    await server.stop();
  });

  it('RedisRateState.take: the burst at once, then waits at the rate, refusals book nothing; two clients share one bucket', async () => {
    const other = new Redis(server.url);
    try {
      // At its ceiling (nothing learned yet) the rate is 10/s and the burst 2.
      const a = new RedisRateState(redis, 'test:rl:shared', adaptiveRateTuning(10), 2, 1000);
      const b = new RedisRateState(other, 'test:rl:shared', adaptiveRateTuning(10), 2, 1000);
      expect([(await a.take(1000)).waitMs, (await b.take(1000)).waitMs]).toEqual([0, 0]);
      // Real time passes between calls (a busy CI runner: tens of ms), so waits are bounded, not exact.
      const third = (await a.take(1000)).waitMs;
      expect(third).toBeGreaterThan(0);
      expect(third).toBeLessThanOrEqual(100);
      const refused = await b.take(50);
      expect(refused).toMatchObject({ paused: false });
      expect(refused.waitMs).toBeLessThan(-50);
      // The refusal booked nothing: the next token is the one after the third, not after a fourth.
      expect((await b.take(1000)).waitMs).toBeLessThanOrEqual(200);
    } finally {
      other.disconnect();
    }
  });

  it('RedisRateState: a 429 pauses every client and lowers the rate once per round; "exhausted" pauses without lowering it', async () => {
    const tuning = adaptiveRateTuning(80);
    const one = new RedisRateState(redis, 'test:rl:vendor', tuning, 8, 1000);
    const two = new RedisRateState(redis, 'test:rl:vendor', tuning, 8, 1000);
    expect(await one.take(1000)).toMatchObject({ waitMs: 0, paused: false, ratePerSec: 80 });
    expect(await one.throttle(400, true)).toBeCloseTo(56);
    // Another 429 of the same round: the pause may grow, the rate does not fall again.
    expect(await two.throttle(300, true)).toBeCloseTo(56, 0);
    const paused = await two.take(1000);
    expect(paused.paused).toBe(true);
    expect(paused.waitMs).toBeGreaterThan(300);
    expect(paused.waitMs).toBeLessThanOrEqual(400);
    expect(await two.pauseLeftMs()).toBeGreaterThan(300);
    // Beyond the caller's deadline: refused with the wait it would have needed.
    expect((await one.take(100)).waitMs).toBeLessThan(-300);

    const other = new RedisRateState(redis, 'test:rl:other', tuning, 8, 1000);
    expect(await other.throttle(200, false)).toBe(80);
    expect((await other.take(1000)).paused).toBe(true);
    // Keys of one source share a hash tag, so its scripts touch one slot on Redis Cluster.
    const keys = await redis.keys('{test:rl:vendor}:*');
    expect(keys.sort()).toEqual(['{test:rl:vendor}:bucket', '{test:rl:vendor}:learned']);
  });

  it('Redis\'s clock stepped back an hour: what was written "ahead" neither stops refills nor keeps the vendor paused', async () => {
    // A step back is, to the scripts, state written an hour ahead of Redis's clock: set it so.
    const [seconds, micros] = (await redis.time()) as [number | string, number | string];
    const ahead = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) + 3_600_000;
    const tuning = adaptiveRateTuning(100);
    await redis.hset('{test:rl:stepped}:bucket', 'tokens', '-50', 'at', String(ahead));
    await redis.hset('{test:rl:stepped}:learned', 'base', '100', 'base_at', String(ahead), 'paused_until', String(ahead + 200), 'decreased_at', String(ahead));
    const state = new RedisRateState(redis, 'test:rl:stepped', tuning, 2, 1000);
    // The pause written at the step is over (the scripts refuse a pause beyond 10 min): before, an hour and 200 ms.
    expect(await state.pauseLeftMs()).toBe(0);
    const first = await state.take(200);
    expect(first.paused).toBe(false);
    // 50 tokens were booked ahead at 100/s: refused now, and refilled from now on (before: from an hour on, so never).
    expect(first.waitMs).toBeLessThan(-200);
    await new Promise((r) => setTimeout(r, 700));
    expect((await state.take(200)).waitMs).toBeGreaterThanOrEqual(0);
    // The lease's bucket: the same refill.
    await redis.hset('tl:stepped', 'tokens', '0.5', 'at', String(ahead));
    const lease = new RedisTokenLease(redis, 'tl:stepped', 10, 2, 1, 60_000);
    expect(await lease.take()).toBeLessThan(0);
    await new Promise((r) => setTimeout(r, 150));
    expect(await lease.take()).toBe(0);
  });

  it('a client that auto-pipelines (as a cluster client does) has every Lua command from its start: a first use in the same tick as another command answers', async () => {
    // ioredis copies a client's commands into each pipeline as it makes it: a command defined on first use, after
    // another command of the same tick opened the pipeline, was missing from it, and ioredis then threw outside
    // any promise (results[i] is not iterable), which ends the process (ioredis #1931).
    const client = newRedisClient({ url: server.url }, { enableAutoPipelining: true });
    try {
      await client.ping();
      const read = client.get('tl:first-use:other');
      const lease = new RedisTokenLease(client, 'tl:first-use', 100, 10, 5, 60_000);
      const state = new RedisRateState(client, 'test:rl:first-use', adaptiveRateTuning(80), 8, 1000);
      const [value, leased, taken] = await Promise.all([read, lease.take(), state.take(1000)]);
      expect(value).toBeNull();
      expect(leased).toBe(0);
      expect(taken).toMatchObject({ waitMs: 0, paused: false, ratePerSec: 80 });
      expect(Number(await redis.hget('tl:first-use', 'tokens'))).toBeCloseTo(5, 0);
    } finally {
      client.disconnect();
    }
  });

  it('RedisTokenLease: one Redis call per batch, concurrent takes share it, two instances never spend more than the bucket holds', async () => {
    const other = new Redis(server.url);
    try {
      // A rate too slow to refill during the test: the burst is the budget.
      const a = new RedisTokenLease(redis, 'tl:shared', 0.001, 20, 5, 60_000);
      const b = new RedisTokenLease(other, 'tl:shared', 0.001, 20, 5, 60_000);
      // Ten at once on an empty lease: two batches of five, not ten calls.
      expect(await Promise.all(Array.from({ length: 10 }, () => a.take()))).toEqual(Array(10).fill(0));
      expect(Number(await redis.hget('tl:shared', 'tokens'))).toBeCloseTo(10, 0);
      const results: number[] = [];
      for (let i = 0; i < 8; i++) results.push(await (i % 2 ? a : b).take());
      expect(results.filter((r) => r === 0)).toHaveLength(8);
      // 18 spent of 20; b holds 1 of its batch, a none and the bucket 0: the rest are refused with the wait.
      const rest: number[] = [];
      for (let i = 0; i < 4; i++) rest.push(await a.take(), await b.take());
      expect(rest.filter((r) => r === 0)).toHaveLength(2);
      expect(rest.filter((r) => r < 0).every((r) => r < -1000)).toBe(true);
    } finally {
      other.disconnect();
    }
  });
});
