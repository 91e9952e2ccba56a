import { Job, Queue, UnrecoverableError, Worker, type JobType } from 'bullmq';
import Denque from 'denque';
import { DeliveryFailureLog } from './delivery-failure-log.js';
import type { Logger } from '../logger.js';
import { deliveryError, isPermanent, type Deliver, type DeliveryError, type DeliveryRecord, type DeliveryState, type SecondaryJob } from './delivery.js';
import { newRedisClient, queuePrefix, REPLICA_ANSWER_EVENT, SILENT_CONNECTION_MS, type RedisClient, type RedisLocation } from '../redis.js';

export interface DeliveryQueueSettings {
  /** Attempts in all, the first (inline) one included; then the delivery is dead-lettered. */
  maxAttempts: number;
  /** Exponential backoff base between attempts, with ±50 % jitter. */
  backoffMs: number;
  concurrency: number;
  /** A job whose worker died is taken up again after this long. */
  stalledAfterMs: number;
  /** If this process dies right after queueing, another instance makes the first queued attempt after this long. */
  safetyDelayMs: number;
}

/**
 * Secondary deliveries. `submit` first makes the delivery durable, then tries
 * it at once (so a healthy target answers DELIVERED in the same request); a
 * failed try is left to the queue, which retries with backoff until delivered
 * or, after the last attempt, dead-lettered (FAILED, listed, re-drivable).
 */
export interface DeliveryQueue {
  submit(job: SecondaryJob): Promise<DeliveryRecord>;
  list(state: DeliveryState | null, offset: number, first: number): Promise<{ items: DeliveryRecord[]; hasNextPage: boolean }>;
  /** Re-drives a FAILED delivery with a fresh set of attempts; null when there is none with that id. */
  retry(id: string): Promise<DeliveryRecord | null>;
  /** How many deliveries are in each state (FAILED: dead letters). */
  counts(): Promise<Record<DeliveryState, number>>;
  close(): Promise<void>;
}

export class NotRetryableError extends Error {}

/** The delivery log could not be read or changed: it is in Redis, which did not answer (away, or hung past the queue's timeout). */
export class DeliveryLogUnavailableError extends Error {}

interface JobData extends SecondaryJob {
  attempts: number;
  lastError: DeliveryError | null;
  deliveredInline?: boolean;
  /** The target rejected it for good: the next run dead-letters it without calling. */
  permanent?: boolean;
}

const CLOSE_GRACE_MS = 3000;
/** As the cache's Redis commands (RedisConnection): past this, a hung Redis is an absent one. A write waited for it without end. */
const QUEUE_COMMAND_TIMEOUT_MS = 1000;

const STATES: Record<DeliveryState, JobType[]> = {
  QUEUED: ['waiting', 'delayed', 'active', 'prioritized', 'paused', 'waiting-children'],
  DELIVERED: ['completed'],
  FAILED: ['failed'],
};

/** The durable queue: bullmq on Redis, worked by every instance. */
/** Resolves when the client is next ready, or after `ms` (a command sent then fails as it would have). */
function nextReady(client: RedisClient, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      client.off('ready', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    client.once('ready', done);
  });
}

export class BullDeliveryQueue implements DeliveryQueue {
  private readonly queue: Queue<JobData>;
  private readonly worker: Worker<JobData>;
  private readonly connections: RedisClient[] = [];
  private readonly failures: DeliveryFailureLog;
  /** When a replica last answered the queue's connection (REPLICA_ANSWER_EVENT): it is being opened again. */
  private replicaAnsweredAt = -Infinity;
  /** When the queue's connection was last ready. */
  private queueReadyAt = -Infinity;
  /** What the queue's connection last failed with, for the line that says it is not open. */
  private lastQueueError: string | undefined;

  constructor(
    redis: RedisLocation,
    prefix: string,
    private readonly settings: DeliveryQueueSettings,
    /** Sends one delivery: the inline first attempt and the worker's retries alike. */
    private readonly deliver: Deliver,
    private readonly logger: Logger,
  ) {
    // The queue's connection fails fast when Redis is away or hangs (the caller then keeps the delivery in memory;
    // a command that went through after all leaves a second copy, which the target's key keeps single);
    // the worker's blocks and waits for Redis, as bullmq requires.
    const queueConnection = newRedisClient(redis, {
      connectionName: 'gateway:deliveries',
      maxRetriesPerRequest: null,
      enableOfflineQueue: false,
      commandTimeout: QUEUE_COMMAND_TIMEOUT_MS,
      socketTimeout: SILENT_CONNECTION_MS,
    });
    const workerConnection = newRedisClient(redis, { connectionName: 'gateway:deliveries-worker', maxRetriesPerRequest: null });
    // On a cluster one hash tag, so the queue's keys and scripts share a slot; unchanged on one Redis (its queued jobs stay found).
    const queueKeys = queuePrefix(redis, `${prefix}bull`);
    workerConnection.on('error', () => undefined);
    queueConnection.on('error', (error: Error) => (this.lastQueueError = error.message));
    queueConnection.on(REPLICA_ANSWER_EVENT, () => (this.replicaAnsweredAt = performance.now()));
    queueConnection.on('ready', () => (this.queueReadyAt = performance.now()));
    this.connections.push(queueConnection, workerConnection);
    this.failures = new DeliveryFailureLog(logger);
    this.queue = new Queue<JobData>('deliveries', { connection: queueConnection, prefix: queueKeys });
    this.queue.on('error', () => undefined);
    this.worker = new Worker<JobData>(
      'deliveries',
      async (job) => {
        const data = job.data;
        if (data.deliveredInline) return;
        if (data.permanent) throw new UnrecoverableError(data.lastError?.message ?? 'rejected by the target');
        const attempts = data.attempts + 1;
        try {
          await deliver(data);
          await job.updateData({ ...data, attempts, lastError: null });
        } catch (e) {
          const lastError = deliveryError(e);
          await job.updateData({ ...data, attempts, lastError });
          if (isPermanent(e)) throw new UnrecoverableError(lastError.message);
          throw new Error(`${lastError.code}: ${lastError.message}`);
        }
      },
      {
        connection: workerConnection,
        prefix: queueKeys,
        concurrency: settings.concurrency,
        lockDuration: settings.stalledAfterMs,
        stalledInterval: Math.max(1000, Math.floor(settings.stalledAfterMs / 2)),
      },
    );
    this.worker.on('error', () => undefined);
    this.worker.on('failed', (job, error) => {
      if (!job) return;
      const dead = error instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? 1);
      const log = { deliveryId: job.id, operation: job.data.operation, target: job.data.target, attempts: job.data.attempts, code: job.data.lastError?.code };
      if (dead) this.failures.deadLettered(log);
      else this.failures.attemptFailed(log);
    });
  }

  /**
   * The queue's connection open, waited for at most QUEUE_COMMAND_TIMEOUT_MS. bullmq waits for it without end: a
   * connection Redis would not take (its maxclients reached, while the others were open) held every write forever.
   */
  private async opened(): Promise<void> {
    const connection = this.connections[0]!;
    if (connection.status === 'ready') return;
    // Opening (at start), or opened again to reach a new primary (a replica answered): worth a moment. Between attempts
    // after one failed: what it refused, it will refuse again.
    const failingOver = performance.now() - this.replicaAnsweredAt <= QUEUE_COMMAND_TIMEOUT_MS;
    if (connection.status !== 'reconnecting' || failingOver) await nextReady(connection, QUEUE_COMMAND_TIMEOUT_MS);
    // Read again after the wait (TypeScript holds on to the narrowing above).
    if ((connection.status as string) !== 'ready') {
      throw new DeliveryLogUnavailableError(
        `the delivery queue's connection to Redis is not open (${connection.status}${this.lastQueueError ? `, last: ${this.lastQueueError}` : ''})`,
      );
    }
  }

  async submit(secondary: SecondaryJob): Promise<DeliveryRecord> {
    await this.opened();
    // The job id is the delivery's idempotency key: the same delivery submitted again (a retried
    // mutation) is the job already there, whatever became of it.
    const existing = (await Job.fromId(this.queue, secondary.idempotencyKey)) as Job<JobData> | undefined;
    if (existing) return toRecord(existing.id!, existing.data, await existing.getState());
    const data: JobData = { ...secondary, attempts: 0, lastError: null };
    const add = () =>
      this.queue.add(secondary.operation, data, {
        jobId: secondary.idempotencyKey,
        delay: this.settings.safetyDelayMs,
        // The first attempt is made inline, below; the queue has the rest.
        attempts: Math.max(1, this.settings.maxAttempts - 1),
        backoff: { type: 'exponential', delay: this.settings.backoffMs, jitter: 0.5 },
        removeOnComplete: { age: 7 * 86_400, count: 100_000 },
        removeOnFail: { age: 30 * 86_400 },
      });
    const job = await add().catch(async (error: unknown) => {
      // A replica answered (a failover moved the primary): the connection is being opened again to the new one, and
      // what it refused, or dropped as it closed, was not run. Once more there, rather than keep the delivery in memory only.
      if (performance.now() - this.replicaAnsweredAt > QUEUE_COMMAND_TIMEOUT_MS) throw error;
      // The connection still says ready as it closes: what counts is a ready after the answer.
      if (this.queueReadyAt < this.replicaAnsweredAt) await nextReady(this.connections[0]!, QUEUE_COMMAND_TIMEOUT_MS);
      return add();
    });
    try {
      await this.deliver(secondary);
      const done = { ...data, attempts: 1, deliveredInline: true };
      await job.updateData(done);
      await job.promote().catch(() => undefined); // already taken by a worker: it sees deliveredInline
      return toRecord(job.id!, done, 'completed');
    } catch (e) {
      // Permanent: the target rejected it for good, or no attempt is left (DELIVERY_MAX_ATTEMPTS=1).
      const failed: JobData = { ...data, attempts: 1, lastError: deliveryError(e), permanent: isPermanent(e) || this.settings.maxAttempts <= 1 };
      await job.updateData(failed);
      if (failed.permanent) await job.promote().catch(() => undefined);
      else await job.changeDelay(jittered(this.settings.backoffMs)).catch(() => undefined);
      return toRecord(job.id!, failed, failed.permanent ? 'failed' : 'delayed');
    }
  }

  list(state: DeliveryState | null, offset: number, first: number) {
    return this.fromDeliveryLog(async () => {
      await this.opened();
      const types = state ? STATES[state] : [...STATES.QUEUED, ...STATES.DELIVERED, ...STATES.FAILED];
      const jobs = (await this.queue.getJobs(types, offset, offset + first, false)) as Job<JobData>[];
      const items = await Promise.all(jobs.slice(0, first).map(async (j) => toRecord(j.id!, j.data, await j.getState())));
      return { items, hasNextPage: jobs.length > first };
    });
  }

  async counts(): Promise<Record<DeliveryState, number>> {
    await this.opened();
    const n = await this.queue.getJobCounts(...STATES.QUEUED, ...STATES.DELIVERED, ...STATES.FAILED);
    const sum = (types: JobType[]) => types.reduce((total, t) => total + (n[t] ?? 0), 0);
    return { QUEUED: sum(STATES.QUEUED), DELIVERED: sum(STATES.DELIVERED), FAILED: sum(STATES.FAILED) };
  }

  /** What Redis's failure to answer becomes for the delivery log's readers (one warn line each); other errors (a delivery not retryable) pass. */
  private async fromDeliveryLog<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (e) {
      if (e instanceof NotRetryableError) throw e;
      const err = (e as Error).message;
      this.logger.warn(
        { err },
        `The delivery log could not be read or changed: Redis did not answer (${err}); deliveries and retryDelivery answer STORE_UNAVAILABLE until it does`,
      );
      throw new DeliveryLogUnavailableError(err);
    }
  }

  retry(id: string): Promise<DeliveryRecord | null> {
    return this.fromDeliveryLog(async () => {
      await this.opened();
      const job = (await Job.fromId(this.queue, id)) as Job<JobData> | undefined;
      if (!job) return null;
      const state = await job.getState();
      if (state !== 'failed') throw new NotRetryableError(`Delivery ${id} is ${toState(state)}; only FAILED deliveries can be retried.`);
      const data = { ...job.data, permanent: false };
      await job.updateData(data);
      await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      return toRecord(id, data, 'waiting');
    });
  }

  /** Lets the job in hand finish (bounded: a vanished Redis must not hold up shutdown), then disconnects. */
  async close(): Promise<void> {
    const graceful = (async () => {
      await this.worker.close();
      await this.queue.close();
      return true;
    })().catch(() => true);
    let timer: NodeJS.Timeout | undefined;
    const done = await Promise.race([graceful, new Promise<false>((r) => (timer = setTimeout(() => r(false), CLOSE_GRACE_MS)))]);
    clearTimeout(timer);
    if (!done)
      this.logger.warn(`Delivery queue did not close within ${CLOSE_GRACE_MS / 1000} s (is Redis away?): disconnecting; an unfinished job is taken up again by another instance`);
    for (const c of this.connections) c.disconnect();
    this.failures.close();
  }
}

/**
 * Finished deliveries (DELIVERED or FAILED) the in-memory queue keeps for
 * `Query.deliveries` and for a repeated submit, oldest dropped first; queued
 * ones are never dropped. Every write left one behind before, for the life of
 * the process (bullmq keeps its own in Redis, 100,000 delivered).
 */
export const MEMORY_FINISHED_KEPT = 10_000;

/**
 * Deliveries the in-memory queue keeps waiting for a retry. Past it, a
 * delivery whose first attempt failed is dead-lettered at once (FAILED, listed,
 * re-drivable): an audit vendor down for hours under a steady stream of writes
 * would otherwise grow the heap until the process died, losing every one.
 */
export const MEMORY_WAITING_MAX = 10_000;

/**
 * Without Redis: the same behaviour in this process only. Deliveries still
 * queued when it stops are lost; the server warns at start.
 */
export class MemoryDeliveryQueue implements DeliveryQueue {
  private readonly records = new Map<string, { data: JobData; state: DeliveryState; timer?: NodeJS.Timeout }>();
  /** Ids in the order they finished (one may have been re-driven since: it is skipped when its turn to go comes). */
  private readonly finished = new Denque<string>();
  private waiting = 0;
  private readonly failures: DeliveryFailureLog;
  private closed = false;

  constructor(
    private readonly settings: DeliveryQueueSettings,
    private readonly deliver: Deliver,
    private readonly logger: Logger,
    private readonly finishedKept = MEMORY_FINISHED_KEPT,
    private readonly waitingMax = MEMORY_WAITING_MAX,
  ) {
    this.failures = new DeliveryFailureLog(logger);
  }

  async submit(secondary: SecondaryJob): Promise<DeliveryRecord> {
    const id = secondary.idempotencyKey;
    const existing = this.records.get(id);
    if (existing) return toRecord(id, existing.data, existing.state);
    const entry = { data: { ...secondary, attempts: 0, lastError: null } as JobData, state: 'QUEUED' as DeliveryState, timer: undefined as NodeJS.Timeout | undefined };
    this.records.set(id, entry);
    this.waiting++;
    await this.attempt(id);
    return toRecord(id, entry.data, entry.state);
  }

  async list(state: DeliveryState | null, offset: number, first: number) {
    const all = [...this.records].reverse().filter(([, r]) => state === null || r.state === state);
    return { items: all.slice(offset, offset + first).map(([id, r]) => toRecord(id, r.data, r.state)), hasNextPage: all.length > offset + first };
  }

  async counts(): Promise<Record<DeliveryState, number>> {
    const counts = { QUEUED: 0, DELIVERED: 0, FAILED: 0 };
    for (const r of this.records.values()) counts[r.state]++;
    return counts;
  }

  async retry(id: string): Promise<DeliveryRecord | null> {
    const entry = this.records.get(id);
    if (!entry) return null;
    if (entry.state !== 'FAILED') throw new NotRetryableError(`Delivery ${id} is ${entry.state}; only FAILED deliveries can be retried.`);
    entry.state = 'QUEUED';
    this.waiting++;
    entry.data = { ...entry.data, attempts: 0, permanent: false };
    this.schedule(id, 0);
    return toRecord(id, entry.data, entry.state);
  }

  async close(): Promise<void> {
    this.closed = true;
    const pending = [...this.records.values()].filter((r) => r.state === 'QUEUED');
    for (const r of this.records.values()) clearTimeout(r.timer);
    if (pending.length > 0) this.logger.warn({ lost: pending.length }, 'Stopping with queued deliveries that were kept in memory only (no REDIS_URL): they are lost');
    this.failures.close();
  }

  private async attempt(id: string): Promise<void> {
    const entry = this.records.get(id);
    if (!entry || this.closed) return;
    const attempts = entry.data.attempts + 1;
    try {
      await this.deliver(entry.data);
      entry.data = { ...entry.data, attempts, lastError: null };
      entry.state = 'DELIVERED';
      this.finish(id);
    } catch (e) {
      entry.data = { ...entry.data, attempts, lastError: deliveryError(e) };
      if (isPermanent(e) || attempts >= this.settings.maxAttempts) {
        entry.state = 'FAILED';
        this.failures.deadLettered({ deliveryId: id, operation: entry.data.operation, target: entry.data.target, attempts, code: entry.data.lastError?.code });
        this.finish(id);
      } else if (this.waiting > this.waitingMax) this.refuseToKeep(id, entry);
      else this.schedule(id, jittered(this.settings.backoffMs * 2 ** (attempts - 1)));
    }
  }

  private refuseToKeep(id: string, entry: { data: JobData; state: DeliveryState }): void {
    const full = `${this.waitingMax} deliveries already wait in memory (set REDIS_URL for a durable queue)`;
    const data = (entry.data = { ...entry.data, lastError: { code: 'INTERNAL', message: `Not kept for a retry: ${full}; re-drive it with retryDelivery`, retryable: true } });
    entry.state = 'FAILED';
    this.finish(id);
    this.failures.deadLettered({ deliveryId: id, operation: data.operation, target: data.target, attempts: data.attempts, code: 'INTERNAL' }, `without a retry: ${full}`);
  }

  /** `id` left QUEUED for DELIVERED or FAILED. */
  private finish(id: string): void {
    this.waiting--;
    this.finished.push(id);
    while (this.finished.length > this.finishedKept) {
      const oldest = this.finished.shift()!;
      const state = this.records.get(oldest)?.state;
      if (state === 'DELIVERED' || state === 'FAILED') this.records.delete(oldest);
    }
  }

  private schedule(id: string, delayMs: number): void {
    const entry = this.records.get(id);
    if (!entry || this.closed) return;
    entry.timer = setTimeout(() => void this.attempt(id), delayMs);
    entry.timer.unref();
  }
}

function jittered(ms: number): number {
  return Math.round(ms * (0.5 + Math.random()));
}

/** A bullmq job state, or one of ours already. */
function toState(state: string): DeliveryState {
  if (state === 'DELIVERED' || state === 'QUEUED' || state === 'FAILED') return state;
  return state === 'completed' ? 'DELIVERED' : state === 'failed' ? 'FAILED' : 'QUEUED';
}

function toRecord(id: string, data: JobData, state: string): DeliveryRecord {
  return {
    id,
    target: data.target,
    primary: false,
    state: toState(state),
    attempts: data.attempts,
    error: toState(state) === 'DELIVERED' ? null : data.lastError,
    operation: data.operation,
    createdAt: data.createdAt,
  };
}
