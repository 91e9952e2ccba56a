import { createHash, randomUUID } from 'node:crypto';
import { GraphQLError } from 'graphql';
import type { Viewer } from '../viewer.js';
import type { Caches } from '../sources/caches.js';
import { acceptedButUnread, badUserInput, SourceError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Deadline } from '../resilience/deadline.js';
import type { Sources } from '../sources/index.js';
import type { NotificationEntity, SendableChannel, UserEntity } from '../sources/models.js';
import { deliveryError, type DeliveryRecord, type DeliveryTarget, type SecondaryJob, type WriteStatus } from './delivery.js';
import type { DeliveryQueue } from './delivery-queue.js';
import type { IdempotencyStore } from './idempotency-store.js';
import type { SettleAgain } from '../cache/settle-again.js';
import type { DeliveryFailureLog } from './delivery-failure-log.js';

export type Operation = 'updateProfile' | 'sendNotification' | 'markNotificationsRead';

export interface WritePayload<R> {
  status: WriteStatus;
  deliveries: DeliveryRecord[];
  result: R | null;
  idempotencyKey: string;
  replayed: boolean;
}

export type StoredPayload = WritePayload<unknown>;

export interface WritesOptions {
  sources: Sources;
  caches: Caches;
  queue: DeliveryQueue;
  /** Takes a delivery when the durable queue cannot (Redis away at that moment). */
  fallbackQueue: DeliveryQueue;
  idempotency: IdempotencyStore<StoredPayload>;
  idempotencyTtlMs: number;
  requestDeadlineMs: number;
  logger: Logger;
  /** Where a write's expected failures are logged, the first few a window in full and the rest summed up. */
  failures: DeliveryFailureLog;
  /** Runs a write's drop once more after the vendor's reads have settled (WRITE_SETTLE_MS). */
  settle: SettleAgain;
}

interface WriteSpec<R> {
  operation: Operation;
  viewer: Viewer;
  userId: string;
  /** What makes two requests "the same" for an idempotency key (without the key itself). */
  input: unknown;
  clientKey: string | null | undefined;
  primaryTarget: DeliveryTarget;
  /** The primary write; null means the user does not exist. */
  primary(idempotencyKey: string): Promise<R | null>;
  audit(clientKey: string): Omit<SecondaryJob, 'idempotencyKey' | 'createdAt' | 'operation' | 'target'>['event'];
  /** Drops the cache entries the write changed; `result` is the target's answer (null when it could not be read). */
  invalidate(result: R | null): Promise<void>;
  /** Drops again, once the vendor's reads have settled, what they may have shown as before meanwhile. */
  settled(result: R | null): Promise<void>;
  deadline: Deadline;
}

/**
 * The write model: authorize and validate first (the resolvers), then claim
 * the idempotency key, check the user exists, and start the primary write and
 * the secondary delivery together. The primary is awaited; the secondary is
 * made durable before it is tried, so neither a failed target nor a dead
 * process loses it. Each target gets a key derived from the mutation's, so
 * every retry of it — ours, the queue's, the client's — writes once.
 */
export class Writes {
  constructor(private readonly o: WritesOptions) {}

  updateProfile(viewer: Viewer, input: { userId: string; name?: string; nickname?: string; avatarUrl?: string }, clientKey: string | null | undefined, deadline: Deadline) {
    const changes = {
      ...(input.name !== undefined ? { name: input.name } : {}),
      ...(input.nickname !== undefined ? { nickname: input.nickname } : {}),
      ...(input.avatarUrl !== undefined ? { picture: input.avatarUrl } : {}),
    };
    return this.run<UserEntity>({
      operation: 'updateProfile',
      viewer,
      userId: input.userId,
      input,
      clientKey,
      primaryTarget: 'IDENTITY',
      primary: () => this.o.sources.identity.updateUser(input.userId, changes, deadline),
      audit: (key) => ({
        actor: viewer.userId,
        action: 'profile.update',
        target: input.userId,
        at: new Date().toISOString(),
        details: { fields: Object.keys(changes).sort(), idempotencyKey: key },
      }),
      invalidate: (user) => this.o.caches.profileWritten(input.userId, user),
      settled: (user) => this.o.caches.profileSettled(input.userId, user),
      deadline,
    });
  }

  sendNotification(viewer: Viewer, input: { userId: string; title: string; body: string; channel: SendableChannel }, clientKey: string | null | undefined, deadline: Deadline) {
    return this.run<NotificationEntity>({
      operation: 'sendNotification',
      viewer,
      userId: input.userId,
      input,
      clientKey,
      primaryTarget: 'NOTIFICATIONS',
      primary: (key) => this.o.sources.notifications.create(input, key, deadline),
      audit: (key) => ({
        actor: viewer.userId,
        action: 'notification.send',
        target: input.userId,
        at: new Date().toISOString(),
        details: { channel: input.channel, idempotencyKey: key },
      }),
      invalidate: () => this.o.caches.invalidateNotifications(input.userId),
      settled: () => this.o.caches.invalidateNotifications(input.userId),
      deadline,
    });
  }

  markNotificationsRead(viewer: Viewer, input: { userId: string; ids: string[] }, clientKey: string | null | undefined, deadline: Deadline) {
    return this.run<number>({
      operation: 'markNotificationsRead',
      viewer,
      userId: input.userId,
      input: { userId: input.userId, ids: [...input.ids].sort() },
      clientKey,
      primaryTarget: 'NOTIFICATIONS',
      primary: (key) => this.o.sources.notifications.markRead(input.userId, input.ids, key, deadline),
      audit: (key) => ({
        actor: viewer.userId,
        action: 'notifications.read',
        target: input.userId,
        at: new Date().toISOString(),
        details: { count: input.ids.length, idempotencyKey: key },
      }),
      invalidate: () => this.o.caches.invalidateNotifications(input.userId),
      settled: () => this.o.caches.invalidateNotifications(input.userId),
      deadline,
    });
  }

  private async run<R>(spec: WriteSpec<R>): Promise<WritePayload<R>> {
    const clientKey = spec.clientKey ?? randomUUID();
    // Keys are the caller's own: another user's key never matches, nor reveals anything.
    const storeKey = sha256(`${spec.viewer.userId}\u0000${clientKey}`);
    const fingerprint = sha256(JSON.stringify([spec.operation, spec.input]));

    if (spec.clientKey) {
      const earlier = await this.claim(storeKey, fingerprint, spec.deadline);
      if (earlier) return { ...(earlier as WritePayload<R>), replayed: true };
    }
    try {
      await this.mustExist(spec.userId, spec.deadline);
      const payload = await this.fanOut(spec, storeKey, clientKey);
      if (spec.clientKey) {
        // A failed write must run again when repeated; the targets' own keys still keep it single.
        if (payload.status === 'FAILED') await this.o.idempotency.release(storeKey).catch(() => undefined);
        else
          await this.o.idempotency
            .complete(storeKey, fingerprint, payload, this.o.idempotencyTtlMs)
            .catch((e: unknown) => this.o.logger.warn({ err: e }, 'Could not store an idempotent result; a repeat will run the write again (still once per target)'));
      }
      return payload;
    } catch (e) {
      if (spec.clientKey) await this.o.idempotency.release(storeKey).catch(() => undefined);
      throw e;
    }
  }

  /** The stored payload of an earlier request with this key, null when the key is now ours. */
  private async claim(storeKey: string, fingerprint: string, deadline: Deadline): Promise<StoredPayload | null> {
    for (;;) {
      const existing = await this.o.idempotency.claim(storeKey, fingerprint, this.o.requestDeadlineMs * 2);
      if (!existing) return null;
      if (existing.fingerprint !== fingerprint)
        throw badUserInput('This idempotencyKey was already used with a different request; use a new key for a new request.', 'idempotencyKey');
      if (existing.state === 'DONE') return existing.payload;
      if (deadline.remainingMs() < 100) {
        throw new GraphQLError('A request with this idempotencyKey is still being processed; repeat it shortly.', { extensions: { code: 'IDEMPOTENCY_KEY_IN_USE' } });
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Unknown user → BAD_USER_INPUT before anything is written. If identity cannot tell, the primary's own 404 will. */
  private async mustExist(userId: string, deadline: Deadline): Promise<void> {
    try {
      if ((await this.o.sources.identity.userById(userId, deadline)) === null) throw unknownUser();
    } catch (e) {
      if (!(e instanceof SourceError)) throw e;
      this.o.failures.userUnchecked(e.code);
    }
  }

  private async fanOut<R>(spec: WriteSpec<R>, storeKey: string, clientKey: string): Promise<WritePayload<R>> {
    const createdAt = new Date().toISOString();
    const keyFor = (target: DeliveryTarget) => sha256(`${storeKey}\u0000${spec.operation}\u0000${target}`).slice(0, 40);
    const primaryKey = keyFor(spec.primaryTarget);
    const secondary: SecondaryJob = { operation: spec.operation, target: 'AUDIT', event: spec.audit(clientKey), idempotencyKey: keyFor('AUDIT'), createdAt };

    const [primary, audit] = await Promise.all([
      spec.primary(primaryKey).then(
        (value) => ({ ok: true as const, value, unread: null }),
        // A 2xx whose body did not read: the target has the change, only its answer is lost.
        (error: unknown) => (acceptedButUnread(error) ? { ok: true as const, value: null, unread: error } : { ok: false as const, error }),
      ),
      this.submit(secondary),
    ]);
    if (primary.ok && primary.value === null && primary.unread === null) throw unknownUser();

    const primaryRecord: DeliveryRecord = {
      id: primaryKey,
      target: spec.primaryTarget,
      primary: true,
      state: primary.ok ? 'DELIVERED' : 'FAILED',
      attempts: 1,
      // On a delivered primary: why its result is null.
      error: !primary.ok ? deliveryError(primary.error) : primary.unread ? deliveryError(primary.unread) : null,
      operation: spec.operation,
      createdAt,
    };
    if (!primary.ok) this.o.failures.primaryFailed({ operation: spec.operation, target: spec.primaryTarget, code: primaryRecord.error?.code });
    if (primary.ok && primary.unread) {
      const { status, code, detail } = primary.unread;
      this.o.failures.primaryUnread({ operation: spec.operation, target: spec.primaryTarget, status, code, detail });
    }
    if (primary.ok) {
      await spec.invalidate(primary.value).catch((e: unknown) => this.o.logger.warn({ err: e }, 'Cache invalidation after a write failed; entries expire by TTL'));
      const value = primary.value;
      this.o.settle.after(() => spec.settled(value));
    }

    const status: WriteStatus = !primary.ok ? 'FAILED' : audit.state === 'DELIVERED' ? 'COMPLETE' : 'PARTIAL';
    return { status, deliveries: [primaryRecord, audit], result: primary.ok ? primary.value : null, idempotencyKey: clientKey, replayed: false };
  }

  /** Durable when Redis takes it; in memory (and said so) when Redis fails at this moment. */
  private async submit(job: SecondaryJob): Promise<DeliveryRecord> {
    try {
      return await this.o.queue.submit(job);
    } catch (e) {
      if (this.o.queue === this.o.fallbackQueue) throw e;
      this.o.failures.keptInMemory(job.operation, e instanceof Error ? e.message : String(e));
      return this.o.fallbackQueue.submit(job);
    }
  }
}

function unknownUser(): GraphQLError {
  return badUserInput('"userId": there is no user with this id.', 'userId');
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}
