import { randomUUID } from 'node:crypto';
import type { RedisClient } from '../redis.js';
import type { Logger } from '../logger.js';
import { SILENT_CONNECTION_MS, type RedisConnection } from '../redis.js';

export interface Invalidation {
  entity: string;
  groups: string[];
}

/** Remembered while Redis is away, replayed when it returns; beyond this, the oldest are dropped (and said so). */
const MAX_PENDING = 10_000;

/**
 * Tells every other instance to drop entries from its L1 (Redis pub/sub), and
 * L2 to drop them too. An invalidation Redis could not take is kept and sent
 * again when Redis returns. An instance whose subscription was interrupted may
 * have missed messages, so it clears its whole L1 when it is back.
 */
export class InvalidationBus {
  private readonly instanceId = randomUUID();
  private readonly channel: string;
  private readonly subscriber: RedisClient;
  private readonly pending = new Map<string, Invalidation>();
  private subscribedOnce = false;
  private closed = false;

  constructor(
    private readonly redis: RedisConnection,
    private readonly logger: Logger,
    private readonly handlers: {
      /** Another instance invalidated: drop from L1 only. */
      dropLocal(message: Invalidation): void;
      /** Messages may have been missed: drop all of L1. */
      resync(): void;
      /** Delete from L2; false when Redis did not take it. */
      deleteShared(message: Invalidation): Promise<boolean>;
    },
  ) {
    this.channel = redis.key('cache', 'invalidate');
    // A subscribed connection sends nothing of its own: the client's pings (newRedisClient) find one gone silent.
    this.subscriber = redis.newClient({ connectionName: 'gateway:invalidations', autoResubscribe: false, socketTimeout: SILENT_CONNECTION_MS });
    this.subscriber.on('error', () => undefined);
    this.subscriber.on('ready', () => {
      this.subscriber.subscribe(this.channel).then(
        () => {
          if (this.subscribedOnce) {
            handlers.resync();
            logger.info('Cache invalidation channel back: L1 cleared, since invalidations may have been missed meanwhile');
          }
          this.subscribedOnce = true;
        },
        () => undefined,
      );
    });
    this.subscriber.on('message', (_channel: string, raw: string) => {
      const message = parse(raw);
      if (message && message.from !== this.instanceId) handlers.dropLocal(message);
    });
    redis.client.on('ready', () => void this.flushPending());
  }

  /** Drops the entries everywhere: L2 and every other instance's L1 (the caller has dropped its own). */
  async publish(message: Invalidation): Promise<void> {
    const delivered = (await this.handlers.deleteShared(message)) && (await this.send(message));
    if (!delivered) this.keep(message);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.subscriber.removeAllListeners('ready');
    await this.subscriber.quit().catch(() => this.subscriber.disconnect());
  }

  private async send(message: Invalidation): Promise<boolean> {
    if (!this.redis.available) return false;
    try {
      await this.redis.client.publish(this.channel, JSON.stringify({ from: this.instanceId, ...message }));
      return true;
    } catch {
      return false;
    }
  }

  private keep(message: Invalidation): void {
    for (const group of message.groups) {
      const id = `${message.entity}\u0000${group}`;
      this.pending.delete(id);
      this.pending.set(id, { entity: message.entity, groups: [group] });
    }
    if (this.pending.size > MAX_PENDING) {
      const drop = this.pending.size - MAX_PENDING;
      for (const id of [...this.pending.keys()].slice(0, drop)) this.pending.delete(id);
      this.logger.warn({ dropped: drop }, 'Too many cache invalidations waiting for Redis: the oldest are dropped; their L2 entries expire by TTL');
    }
  }

  private async flushPending(): Promise<void> {
    if (this.closed || this.pending.size === 0) return;
    const waiting = [...this.pending.values()];
    this.pending.clear();
    this.logger.info({ invalidations: waiting.length }, 'Redis back: sending the cache invalidations made while it was away');
    for (const message of waiting) await this.publish(message);
  }
}

function parse(raw: string): (Invalidation & { from: string }) | null {
  try {
    const m = JSON.parse(raw) as Partial<Invalidation & { from: string }>;
    return typeof m.entity === 'string' && Array.isArray(m.groups) && typeof m.from === 'string' ? (m as Invalidation & { from: string }) : null;
  } catch {
    return null;
  }
}
