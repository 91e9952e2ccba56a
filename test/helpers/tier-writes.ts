import { expect } from 'vitest';
import type { RedisTier } from '../../src/cache/redis-tier.js';
import type { RedisClient } from '../../src/redis.js';

/**
 * What L2 writes must leave in Redis, on a single server (one script a batch) or a cluster (a write's commands one by
 * one): each entry with its TTL in its group's index, the index living as long as its longest entry and not cut by a
 * shorter one written later. `client` reads Redis directly.
 */
export async function expectTierWrites(tier: RedisTier, client: RedisClient): Promise<void> {
  const write = (group: string, variant: string, ttlMs: number) => ({
    key: tier.key('e:1', group, variant),
    indexKey: tier.indexKey('e:1', group),
    json: `"${variant}"`,
    ttlMs,
  });
  const [long, short, other] = [write('g1', 'a', 60_000), write('g1', 'b', 5_000), write('g2', '', 30_000)];
  tier.setMany([long, short, other]);
  await expect.poll(async () => (await tier.getMany([long.key, short.key, other.key]))?.join()).toBe('"a","b",""');
  const pttl = (key: string) => client.pttl(key);
  expect(await pttl(long.key)).toBeGreaterThan(55_000);
  expect(await pttl(short.key)).toBeLessThanOrEqual(5_000);
  expect((await client.smembers(long.indexKey)).sort()).toEqual([long.key, short.key].sort());
  expect(await client.smembers(other.indexKey)).toEqual([other.key]);
  // The index outlives its longest entry's TTL, is not cut to a shorter one written later, and grows with a longer one.
  expect(await pttl(long.indexKey)).toBeGreaterThan(55_000);
  expect(await pttl(other.indexKey)).toBeGreaterThan(25_000);
  tier.setMany([write('g1', 'c', 1_000)]);
  await expect.poll(() => client.exists(tier.key('e:1', 'g1', 'c'))).toBe(1);
  expect(await pttl(long.indexKey)).toBeGreaterThan(55_000);
  tier.setMany([write('g1', 'd', 120_000)]);
  await expect.poll(() => pttl(long.indexKey)).toBeGreaterThan(115_000);
  expect(await tier.deleteGroups([long.indexKey])).toBe(true);
  // One hash tag ({g1}): one slot, so one command on a cluster too.
  expect(await client.exists(long.key, short.key, long.indexKey)).toBe(0);
}
