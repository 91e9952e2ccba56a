import { LRUCache } from 'lru-cache';
import type { RedisConnection } from '../redis.js';

/**
 * What a client's idempotency key maps to: the fingerprint of the request that
 * first used it and, once it finished, its payload. Kept 24 h by default.
 */
export type IdempotencyRecord<P> = { fingerprint: string; state: 'IN_PROGRESS' } | { fingerprint: string; state: 'DONE'; payload: P };

export interface IdempotencyStore<P> {
  /** Claims the key for a request; the existing record when someone already has it. */
  claim(key: string, fingerprint: string, inProgressTtlMs: number): Promise<IdempotencyRecord<P> | null>;
  complete(key: string, fingerprint: string, payload: P, ttlMs: number): Promise<void>;
  /** Lets the key be used again (the write failed, so repeating it must run it again). */
  release(key: string): Promise<void>;
  get(key: string): Promise<IdempotencyRecord<P> | null>;
}

/** In Redis: shared by every instance, survives restarts. SET NX makes the claim atomic. */
export class RedisIdempotencyStore<P> implements IdempotencyStore<P> {
  constructor(private readonly redis: RedisConnection) {}

  async claim(key: string, fingerprint: string, inProgressTtlMs: number): Promise<IdempotencyRecord<P> | null> {
    const k = this.redis.key('idem', key);
    const record: IdempotencyRecord<P> = { fingerprint, state: 'IN_PROGRESS' };
    const set = await this.redis.client.set(k, JSON.stringify(record), 'PX', inProgressTtlMs, 'NX');
    if (set === 'OK') return null;
    return (await this.get(key)) ?? this.claim(key, fingerprint, inProgressTtlMs);
  }

  async complete(key: string, fingerprint: string, payload: P, ttlMs: number): Promise<void> {
    await this.redis.client.set(this.redis.key('idem', key), JSON.stringify({ fingerprint, state: 'DONE', payload }), 'PX', ttlMs);
  }

  async release(key: string): Promise<void> {
    await this.redis.client.del(this.redis.key('idem', key));
  }

  async get(key: string): Promise<IdempotencyRecord<P> | null> {
    const raw = await this.redis.client.get(this.redis.key('idem', key));
    return raw ? (JSON.parse(raw) as IdempotencyRecord<P>) : null;
  }
}

/**
 * What this process keeps of its keys' records, by the length of their JSON: a
 * payload carries the write's result (a notification's body may be 5,000
 * characters), so a count bound let 17,000 keyed writes fill a 160 MB heap.
 * The oldest go first; a repeat of one gone runs the write again, which the
 * targets' own keys still keep single.
 */
export const MEMORY_RECORDS_MAX_CHARS = 8 * 1024 * 1024;

/** In this process only: without Redis, repeats are recognised until this process restarts (or its records are crowded out). */
export class MemoryIdempotencyStore<P> implements IdempotencyStore<P> {
  private readonly records: LRUCache<string, IdempotencyRecord<P>>;

  constructor(maxChars = MEMORY_RECORDS_MAX_CHARS) {
    this.records = new LRUCache({ maxSize: maxChars, sizeCalculation: (record) => Math.max(1, JSON.stringify(record).length), ttlAutopurge: false });
  }

  async claim(key: string, fingerprint: string, inProgressTtlMs: number): Promise<IdempotencyRecord<P> | null> {
    const existing = this.records.get(key);
    if (existing) return existing;
    this.records.set(key, { fingerprint, state: 'IN_PROGRESS' }, { ttl: inProgressTtlMs });
    return null;
  }

  async complete(key: string, fingerprint: string, payload: P, ttlMs: number): Promise<void> {
    this.records.set(key, { fingerprint, state: 'DONE', payload }, { ttl: ttlMs });
  }

  async release(key: string): Promise<void> {
    this.records.delete(key);
  }

  async get(key: string): Promise<IdempotencyRecord<P> | null> {
    return this.records.get(key) ?? null;
  }
}

/**
 * Redis first; while Redis cannot answer, this process's memory, so a write
 * never fails because Redis did. Repeats are then recognised only by the
 * instance that saw the first (the targets' derived keys still keep each
 * write single). The change is logged once each way.
 */
export class FallbackIdempotencyStore<P> implements IdempotencyStore<P> {
  private degraded = false;

  constructor(
    private readonly primary: IdempotencyStore<P>,
    private readonly fallback: IdempotencyStore<P>,
    private readonly onChange: (degraded: boolean) => void,
  ) {}

  claim(key: string, fingerprint: string, inProgressTtlMs: number) {
    return this.either((s) => s.claim(key, fingerprint, inProgressTtlMs));
  }
  complete(key: string, fingerprint: string, payload: P, ttlMs: number) {
    return this.either((s) => s.complete(key, fingerprint, payload, ttlMs));
  }
  release(key: string) {
    return this.either((s) => s.release(key));
  }
  get(key: string) {
    return this.either((s) => s.get(key));
  }

  private async either<T>(op: (store: IdempotencyStore<P>) => Promise<T>): Promise<T> {
    try {
      const result = await op(this.primary);
      if (this.degraded) this.onChange((this.degraded = false));
      return result;
    } catch {
      if (!this.degraded) this.onChange((this.degraded = true));
      return op(this.fallback);
    }
  }
}
