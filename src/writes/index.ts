import type { Caches } from '../sources/caches.js';
import { acceptedButUnread } from '../errors.js';
import type { WritesSettings } from '../config-types.js';
import type { Logger } from '../logger.js';
import type { RedisConnection } from '../redis.js';
import type { Sources } from '../sources/index.js';
import type { SecondaryJob } from './delivery.js';
import { DeliveryFailureLog } from './delivery-failure-log.js';
import { BullDeliveryQueue, MemoryDeliveryQueue, type DeliveryQueue } from './delivery-queue.js';
import { FallbackIdempotencyStore, MemoryIdempotencyStore, RedisIdempotencyStore } from './idempotency-store.js';
import { Writes, type StoredPayload } from './writes.js';
import { SettleAgain } from '../cache/settle-again.js';

export { Writes };
export type { DeliveryQueue };

/**
 * The write side, wired from config: the delivery queue (bullmq with Redis, in
 * memory without — and said so), the in-memory queue that takes over when
 * Redis fails at the moment of a write, and the idempotency store.
 */
export function createWrites(
  config: WritesSettings,
  deps: { sources: Sources; caches: Caches; redis: RedisConnection | null; logger: Logger },
): { writes: Writes; deliveries: DeliveryQueue; close(): Promise<void> } {
  const { sources, caches, redis, logger } = deps;
  // A 2xx whose body did not read is a delivery that happened (as for the primary, see Writes): not retried into the dead letters.
  const deliver = (job: SecondaryJob) =>
    sources.audit.record(job.event, job.idempotencyKey).then(
      (recorded) => {
        if (recorded === null)
          logger.info(
            { operation: job.operation, idempotencyKey: job.idempotencyKey },
            'audit already holds the event of this write under its key (a repeat sent it again with a new "at"): taken as delivered',
          );
      },
      (error: unknown) => {
        if (!acceptedButUnread(error)) throw error;
      },
    );
  const settings = {
    maxAttempts: config.writes.deliveryMaxAttempts,
    backoffMs: config.writes.deliveryBackoffMs,
    concurrency: config.writes.deliveryConcurrency,
    stalledAfterMs: config.writes.deliveryStalledAfterMs,
    safetyDelayMs: config.requestDeadlineMs + config.writes.deliveryBackoffMs,
  };
  const memoryQueue = new MemoryDeliveryQueue(settings, deliver, logger);
  const deliveries: DeliveryQueue = config.redis ? new BullDeliveryQueue(config.redis, config.redis.keyPrefix, settings, deliver, logger) : memoryQueue;
  if (!config.redis) {
    logger.warn(
      'Deliveries are not durable: without REDIS_URL, audit events waiting for a retry live in this process only and are lost if it stops. Idempotency keys are remembered by this process only.',
    );
  }
  const idempotency = redis
    ? new FallbackIdempotencyStore<StoredPayload>(new RedisIdempotencyStore(redis), new MemoryIdempotencyStore(), (degraded) =>
        degraded ? logger.warn('Idempotency keys: Redis not answering, remembering them in this process until it does') : logger.info('Idempotency keys: back in Redis'),
      )
    : new MemoryIdempotencyStore<StoredPayload>();
  const settle = new SettleAgain(config.writes.settleMs, (e: unknown) => logger.warn({ err: e }, 'Dropping the entries of a write again failed; they expire by TTL'));
  const failures = new DeliveryFailureLog(logger);
  const writes = new Writes({
    sources,
    caches,
    queue: deliveries,
    fallbackQueue: memoryQueue,
    idempotency,
    idempotencyTtlMs: config.writes.idempotencyTtlMs,
    requestDeadlineMs: config.requestDeadlineMs,
    logger,
    failures,
    settle,
  });
  return {
    writes,
    deliveries,
    close: async () => {
      settle.close();
      failures.close();
      await deliveries.close();
      if (deliveries !== memoryQueue) await memoryQueue.close();
    },
  };
}
