import type { Served } from '../cache/entity-cache.js';
import { Deadline } from '../resilience/deadline.js';
import type { Caches } from '../sources/caches.js';

/**
 * What subscription events read again (an unread count after a webhook),
 * collected for `windowMs` and read as one batch per entity under its own
 * deadline, through the same cache tiers, batcher and source as a query.
 * Events come one at a time (100 a second are 100 separate moments), so the
 * query path's 2 ms batch window would make one vendor call per event; this
 * one trades a few tens of ms of latency for calls that stay inside the
 * vendor's budget. A key asked twice in a window is read once.
 */
export class LiveReads {
  private readonly pending = new Map<string, Map<string, { key: unknown; waiters: ((served: Served<unknown> | Error) => void)[] }>>();

  constructor(
    private readonly caches: Caches,
    private readonly deadlineMs: number,
    private readonly windowMs: number,
  ) {}

  read<K, V>(entity: string, key: K): Promise<Served<V>> {
    const cache = this.caches.entity<K, V>(entity);
    let batch = this.pending.get(entity);
    if (!batch) {
      this.pending.set(entity, (batch = new Map()));
      setTimeout(() => void this.flush(entity), this.windowMs);
    }
    const id = cache.id(key);
    let entry = batch.get(id);
    if (!entry) batch.set(id, (entry = { key, waiters: [] }));
    const waiters = entry.waiters;
    return new Promise<Served<V>>((resolve, reject) => {
      waiters.push((served) => (served instanceof Error ? reject(served) : resolve(served as Served<V>)));
    });
  }

  private async flush(entity: string): Promise<void> {
    const batch = this.pending.get(entity);
    this.pending.delete(entity);
    if (!batch) return;
    const entries = [...batch.values()];
    const deadline = Deadline.after(this.deadlineMs);
    try {
      const results = await this.caches.entity(entity).getMany(
        entries.map((e) => e.key as never),
        deadline,
        [...batch.keys()],
      );
      entries.forEach((e, i) => e.waiters.forEach((w) => w(results[i] ?? new Error(`no answer for a live read of ${entity}`))));
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      for (const e of entries) e.waiters.forEach((w) => w(error));
    } finally {
      deadline.dispose();
    }
  }
}
