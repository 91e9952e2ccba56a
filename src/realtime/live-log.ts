import { lruOfEntries } from '../cache/lru-of-entries.js';
import type { Siblings } from '../siblings.js';

/** Called for each event read, with its channel; `payload()` parses it (only for a channel someone here listens on). */
export type LiveLogReader = (channel: string, payload: () => unknown) => void;

/** What carries live events between instances: Redis (RedisLiveLog), the cluster's primary, or nothing (one process). */
export interface LiveLog {
  /**
   * Appends an event for every instance's readers, this one's too. With
   * `once`, only the first event under that key (within its TTL) is
   * appended: false for the others. Rejects when the event could not be
   * stored; the caller tries again later, and nothing is half done.
   */
  append(channel: string, payload: unknown, once?: { key: string; ttlMs: number }): Promise<boolean>;
  /** Starts reading; each event is delivered once to `deliver`. */
  read(deliver: LiveLogReader): void;
  /** Resolves once reading has begun: an event appended after it is delivered. */
  reading(): Promise<void>;
  close(): void;
}

/**
 * Without Redis: events go to this process's readers at once, and under
 * WORKERS=N to the other workers' through the primary, which also remembers
 * the once keys (so a notification announced by one worker is not announced
 * again by another).
 */
export class LocalLiveLog implements LiveLog {
  private deliver: LiveLogReader = () => undefined;
  private readonly seen = lruOfEntries<string, true>(100_000);

  constructor(private readonly siblings: Siblings | null) {
    siblings?.on('live', (m) => {
      const { type, detail } = m as { type: string; detail: unknown };
      this.deliver(type, () => detail);
    });
  }

  async append(channel: string, payload: unknown, once?: { key: string; ttlMs: number }): Promise<boolean> {
    if (once && !(await this.firstTime(once.key, once.ttlMs))) return false;
    this.siblings?.send('live', { type: channel, detail: payload });
    this.deliver(channel, () => payload);
    return true;
  }

  read(deliver: LiveLogReader): void {
    this.deliver = deliver;
  }

  async reading(): Promise<void> {}

  close(): void {}

  private async firstTime(key: string, ttlMs: number): Promise<boolean> {
    const once = `once ${key}`;
    // Not answered (the primary busy or gone): told as a first time, as a repeat beats a loss.
    if (this.siblings) return (await this.siblings.ask('webhook-seen', once).catch(() => 'accepted')) !== 'duplicate';
    if (this.seen.has(once)) return false;
    this.seen.set(once, true, { ttl: ttlMs });
    return true;
  }
}
