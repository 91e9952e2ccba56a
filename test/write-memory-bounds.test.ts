import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/logger.js';
import { SourceError } from '../src/errors.js';
import { MemoryDeliveryQueue } from '../src/writes/delivery-queue.js';
import type { SecondaryJob } from '../src/writes/delivery.js';
import { MemoryIdempotencyStore } from '../src/writes/idempotency-store.js';
import { DeliveryFailureLog } from '../src/writes/delivery-failure-log.js';
import { loggedLines } from './helpers/log-lines.js';

/**
 * Without Redis, what the write path keeps in the heap is bounded: before,
 * every keyed write's payload and every delivery stayed for the life of the
 * process, and 17,000 sendNotifications with 4 KB bodies took a `start:prod`
 * server (160 MB heap) down out of memory.
 */
const logger = createLogger({ level: 'silent' });
const settings = { maxAttempts: 3, backoffMs: 10_000, concurrency: 1, stalledAfterMs: 30_000, safetyDelayMs: 30_000 };
const job = (n: number): SecondaryJob => ({
  operation: 'sendNotification',
  target: 'AUDIT',
  event: { actor: 'a', action: 'notification.send', target: `user-${n}`, at: new Date(0).toISOString(), details: {} },
  idempotencyKey: `key-${n}`,
  createdAt: new Date(0).toISOString(),
});

describe('the in-memory idempotency store', () => {
  it('keeps records by the length of their JSON: the oldest payloads go, the newest still replay', async () => {
    const store = new MemoryIdempotencyStore<{ body: string }>(100_000);
    const body = 'x'.repeat(5_000);
    for (let n = 0; n < 100; n++) {
      expect(await store.claim(`k${n}`, 'f', 60_000)).toBeNull();
      await store.complete(`k${n}`, 'f', { body }, 60_000);
    }
    // About 19 payloads of 5 KB fit in 100,000 characters.
    expect(await store.get('k0')).toBeNull();
    expect(await store.get('k80')).toBeNull();
    expect(await store.get('k99')).toMatchObject({ state: 'DONE', payload: { body } });
    let kept = 0;
    for (let n = 0; n < 100; n++) if ((await store.get(`k${n}`)) !== null) kept++;
    expect(kept).toBeGreaterThanOrEqual(15);
    expect(kept).toBeLessThanOrEqual(20);
  });
});

describe('the in-memory delivery queue', () => {
  it('keeps the last N finished deliveries, never a queued one', async () => {
    let failing = false;
    const queue = new MemoryDeliveryQueue(
      settings,
      async () => {
        if (failing) throw new SourceError({ code: 'SOURCE_UNAVAILABLE', source: 'audit', retryable: true });
      },
      logger,
      3,
    );
    failing = true;
    expect((await queue.submit(job(0))).state).toBe('QUEUED');
    failing = false;
    for (let n = 1; n <= 6; n++) expect((await queue.submit(job(n))).state).toBe('DELIVERED');
    expect(await queue.counts()).toEqual({ QUEUED: 1, DELIVERED: 3, FAILED: 0 });
    const { items } = await queue.list(null, 0, 50);
    expect(items.map((d) => d.id)).toEqual(['key-6', 'key-5', 'key-4', 'key-0']);
    await queue.close();
  });
});

describe('the in-memory delivery queue while its target is down', () => {
  it('keeps at most N deliveries waiting: the next is dead-lettered at once, said at error level, and re-drivable', async () => {
    let up = false;
    const { logger: captured, lines } = loggedLines('info');
    const queue = new MemoryDeliveryQueue(
      { ...settings, backoffMs: 60_000 },
      async () => {
        if (!up) throw new SourceError({ code: 'SOURCE_UNAVAILABLE', source: 'audit', retryable: true });
      },
      captured,
      100,
      2,
    );
    expect((await queue.submit(job(1))).state).toBe('QUEUED');
    expect((await queue.submit(job(2))).state).toBe('QUEUED');
    const third = await queue.submit(job(3));
    const fourth = await queue.submit(job(4));
    expect([third.state, fourth.state]).toEqual(['FAILED', 'FAILED']);
    expect(third.error).toMatchObject({ code: 'INTERNAL', retryable: true, message: expect.stringContaining('set REDIS_URL') });
    expect(await queue.counts()).toEqual({ QUEUED: 2, DELIVERED: 0, FAILED: 2 });
    expect(lines.filter((l) => l.level === 50 && l.msg.includes('without a retry: 2 deliveries already wait in memory'))).toHaveLength(2);
    up = true;
    expect((await queue.retry('key-3'))!.state).toBe('QUEUED');
    await expect.poll(async () => (await queue.counts()).DELIVERED).toBe(1);
    await queue.close();
  });
});

describe('the delivery failure log', () => {
  it('writes the first few of each kind (and target) in full per interval and sums up the rest in one line', () => {
    const { logger, lines } = loggedLines('info');
    const log = new DeliveryFailureLog(logger, 5, 60_000);
    const fields = (n: number, code: string) => ({ deliveryId: `d${n}`, operation: 'sendNotification', target: 'AUDIT', attempts: 10, code });
    for (let n = 0; n < 12; n++) log.deadLettered(fields(n, n < 9 ? 'SOURCE_UNAVAILABLE' : 'SOURCE_TIMEOUT'));
    for (let n = 0; n < 30; n++) log.attemptFailed(fields(n, 'SOURCE_UNAVAILABLE'));
    for (let n = 0; n < 8; n++) log.keptInMemory('updateProfile', 'Command timed out');
    for (let n = 0; n < 6; n++) log.userUnchecked('SOURCE_CIRCUIT_OPEN');
    for (const target of ['IDENTITY', 'NOTIFICATIONS']) for (let n = 0; n < 7; n++) log.primaryFailed({ operation: 'op', target, code: 'SOURCE_TIMEOUT' });
    expect(lines).toHaveLength(5 * 6);
    log.close();
    expect(lines.slice(30).map((l) => [l.level, l.msg])).toEqual([
      [50, '7 more deliveries dead-lettered in the last 60 s (SOURCE_UNAVAILABLE 4, SOURCE_TIMEOUT 3): see Query.deliveries(state: FAILED), re-drive with retryDelivery'],
      [40, '25 more delivery attempts failed in the last 60 s (SOURCE_UNAVAILABLE 25); retrying with backoff'],
      [40, '3 more deliveries were kept in memory only in the last 60 s, the durable queue unavailable (Command timed out 3)'],
      [40, '1 more writes went on in the last 60 s without checking that their user exists (SOURCE_CIRCUIT_OPEN 1); their targets say'],
      [40, '2 more primary writes to IDENTITY failed in the last 60 s (SOURCE_TIMEOUT 2)'],
      [40, '2 more primary writes to NOTIFICATIONS failed in the last 60 s (SOURCE_TIMEOUT 2)'],
    ]);
  });
});
