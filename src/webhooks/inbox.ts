import { randomUUID } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { lruOfEntries } from '../cache/lru-of-entries.js';
import type { Logger } from '../logger.js';
import type { RedisSettings } from '../config-types.js';
import type { Siblings } from '../siblings.js';
import { newRedisClient, SILENT_CONNECTION_MS, type RedisClient } from '../redis.js';
import type { WebhookFailureLog } from './webhook-failure-log.js';

/**
 * One accepted event: which vendor, its webhook-id, and its body as the vendor
 * sent it. Kept as text, not parsed: stored in Redis, a parsed body is
 * stringified again, and JSON.stringify throws on a value nested a few
 * thousand deep that JSON.parse read, so such an event got 503 at every retry.
 */
export interface InboundEvent {
  source: string;
  id: string;
  text: string;
}

export type EventHandler = (event: InboundEvent) => Promise<void>;

/** An event id is remembered this long: past every vendor's retry schedule (UPSTREAMS.md's ends within hours). */
export const REMEMBER_IDS_MS = 25 * 60 * 60 * 1000;
/** Processing attempts an event gets, the first `PROCESSING_BACKOFF_MS` after a failure, each wait twice the last (1, 2, 4, 8 s). */
export const PROCESSING_ATTEMPTS = 5;
export const PROCESSING_BACKOFF_MS = 1000;
/** Past this, an event Redis has not stored gets a 503 (vendors retry, and wait at most 5 s for an answer). */
const STORE_TIMEOUT_MS = 2000;

/**
 * Where an accepted webhook event waits for processing. `accept` resolves only
 * once the event is stored (so the 2xx after it means nothing is lost), and
 * says `duplicate` for an id already accepted (the vendor retried after a
 * lost ack: 2xx, no second effect).
 *
 * With Redis: a bullmq job deduplicated on `<source>/<webhook-id>` for 25 h
 * (bullmq's throttle mode: its key outlives the job), so a repeat within that
 * time is ignored by bullmq itself, on every instance; processed by a worker,
 * retried with backoff, and removed once processed. Only the id is kept: a job
 * kept 25 h kept the body too, 2.3 KB of Redis an event, 20 GB a day at 100
 * events a second. Without Redis: in this process (an LRU of ids and a
 * promise chain), and said so at start.
 */
export interface WebhookInbox {
  accept(event: InboundEvent): Promise<'accepted' | 'duplicate'>;
  close(): Promise<void>;
}

export function createWebhookInbox(
  redis: RedisSettings | null,
  handle: EventHandler,
  logger: Logger,
  failures: WebhookFailureLog,
  siblings: Siblings | null = null,
  backoffMs = PROCESSING_BACKOFF_MS,
): WebhookInbox {
  return redis ? new RedisWebhookInbox(redis, handle, failures, backoffMs) : new MemoryWebhookInbox(handle, logger, failures, siblings, backoffMs);
}

class RedisWebhookInbox implements WebhookInbox {
  private readonly queue: Queue<InboundEvent>;
  private readonly worker: Worker<InboundEvent>;
  private readonly connections: RedisClient[];

  constructor(
    redis: RedisSettings,
    handle: EventHandler,
    failures: WebhookFailureLog,
    private readonly backoffMs: number,
  ) {
    // Commands wait for the connection (it may still be opening); accept() bounds the wait, answering 503 past it.
    // The queue's connection never blocks, so a silent one is ended sooner than the worker's (which bullmq blocks on).
    const queueConnection = newRedisClient(redis, { connectionName: 'gateway:webhooks', maxRetriesPerRequest: null, socketTimeout: SILENT_CONNECTION_MS });
    const workerConnection = newRedisClient(redis, { connectionName: 'gateway:webhooks-worker', maxRetriesPerRequest: null });
    for (const c of [queueConnection, workerConnection]) c.on('error', () => undefined);
    this.connections = [queueConnection, workerConnection];
    // A hash tag keeps every key of the queue in one slot (Redis Cluster).
    const prefix = `{${redis.keyPrefix}webhooks}`;
    this.queue = new Queue<InboundEvent>('events', { connection: queueConnection, prefix });
    this.worker = new Worker<InboundEvent>('events', (job) => handle(job.data), { connection: workerConnection, prefix, concurrency: 8 });
    this.worker.on('failed', (job, err) =>
      failures.processingFailed(job?.data.source, job?.data.id, job?.attemptsMade, err.message, job !== undefined && job.attemptsMade < (job.opts.attempts ?? 1)),
    );
    // Redis coming and going is the RedisConnection's to log; an unhandled 'error' event would end the process.
    this.worker.on('error', () => undefined);
    this.queue.on('error', () => undefined);
  }

  async accept(event: InboundEvent): Promise<'accepted' | 'duplicate'> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Redis did not store the event within ${STORE_TIMEOUT_MS} ms`)), STORE_TIMEOUT_MS);
    });
    try {
      return await Promise.race([this.store(event), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** A store that finishes after its answer timed out is harmless: the vendor's retry finds the id and does nothing more. */
  private async store(event: InboundEvent): Promise<'accepted' | 'duplicate'> {
    // bullmq refuses ':' in a job id; a vendor's id may hold one.
    const eventKey = `${event.source}/${encodeURIComponent(event.id)}`;
    // A job id of its own, so that bullmq answering with another one says this id was already stored.
    // Short: it is the value kept 25 h under the event's key (the job's data names source and id).
    const jobId = randomUUID();
    const job = await this.queue.add('event', event, {
      jobId,
      deduplication: { id: eventKey, ttl: REMEMBER_IDS_MS },
      attempts: PROCESSING_ATTEMPTS,
      backoff: { type: 'exponential', delay: this.backoffMs },
      removeOnComplete: true,
      // Kept a while for whoever looks into why (bodies and all), not for deduplication.
      removeOnFail: { age: REMEMBER_IDS_MS / 1000, count: 1000 },
    });
    return job.id === jobId ? 'accepted' : 'duplicate';
  }

  /** Bounded: with Redis away, bullmq's close would wait for it; an unfinished job is taken up by another instance. */
  async close(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const closed = Promise.allSettled([this.worker.close(), this.queue.close()]);
    await Promise.race([closed, new Promise((resolve) => (timer = setTimeout(resolve, STORE_TIMEOUT_MS)))]);
    clearTimeout(timer);
    for (const c of this.connections) c.disconnect();
  }
}

/**
 * Without Redis: processed one at a time in this process. A failed event is tried again on the schedule a bullmq job
 * has (PROCESSING_ATTEMPTS, backing off from `backoffMs`), beside the chain, so the events after it do not wait; the
 * vendor had its 2xx and will not send it again. One still waiting at stop is lost, and the stop says how many.
 */
class MemoryWebhookInbox implements WebhookInbox {
  private readonly seen = lruOfEntries<string, true>(100_000, { ttl: REMEMBER_IDS_MS });
  private chain: Promise<void> = Promise.resolve();
  private readonly retries = new Map<NodeJS.Timeout, InboundEvent>();

  constructor(
    private readonly handle: EventHandler,
    private readonly logger: Logger,
    private readonly failures: WebhookFailureLog,
    /** Under WORKERS=N: the primary remembers the ids, so a repeat reaching another worker is still a repeat. */
    private readonly siblings: Siblings | null,
    private readonly backoffMs: number,
  ) {
    logger.warn(
      'Webhook events are kept in this process only (no REDIS_URL): an event accepted here is lost if it stops before processing it, and repeats are recognised by this instance alone.',
    );
  }

  async accept(event: InboundEvent): Promise<'accepted' | 'duplicate'> {
    const key = `${event.source}:${event.id}`;
    if (this.siblings) {
      // Not answered (the primary busy or gone): not stored, so the vendor retries.
      if ((await this.siblings.ask('webhook-seen', key)) === 'duplicate') return 'duplicate';
    } else {
      if (this.seen.has(key)) return 'duplicate';
      this.seen.set(key, true);
    }
    this.process(event, 1);
    return 'accepted';
  }

  async close(): Promise<void> {
    await this.chain;
    if (this.retries.size === 0) return;
    const lost = [...this.retries.values()].map((e) => `${e.source}/${e.id}`);
    for (const timer of this.retries.keys()) clearTimeout(timer);
    this.retries.clear();
    this.logger.warn({ events: lost }, `${lost.length} webhook events whose processing had failed were waiting for another attempt at stop: lost (no REDIS_URL)`);
  }

  private process(event: InboundEvent, attempt: number): void {
    this.chain = this.chain.then(() => this.handle(event)).catch((err: unknown) => this.failed(event, attempt, err));
  }

  private failed(event: InboundEvent, attempt: number, err: unknown): void {
    const retrying = attempt < PROCESSING_ATTEMPTS;
    this.failures.processingFailed(event.source, event.id, attempt, (err as Error).message, retrying);
    if (!retrying) return;
    const timer = setTimeout(
      () => {
        this.retries.delete(timer);
        this.process(event, attempt + 1);
      },
      this.backoffMs * 2 ** (attempt - 1),
    );
    this.retries.set(timer, event);
  }
}
