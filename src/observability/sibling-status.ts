import type { Siblings } from '../siblings.js';
import type { SourcePart, StatusHistory } from './status-history.js';

/** How often each worker sends its part of the status to the others. */
export const STATUS_SHARE_MS = 2_000;
/** A worker not heard from for this long is gone (replaced, or stopping): its part is left out. */
const FORGET_AFTER_MS = 3 * STATUS_SHARE_MS;

interface Shared {
  index: number;
  sources: SourcePart[];
}

/**
 * `/status` under WORKERS=N shows the whole set, whichever worker answers:
 * each worker sends its part (StatusHistory.part, a few KB) to the others
 * every STATUS_SHARE_MS, and keeps their latest. Before, each refresh of the
 * page showed the worker that happened to answer: its calls alone, and drift
 * it had seen, appearing and disappearing every 5 s.
 */
export class SiblingStatus {
  private readonly peers = new Map<number, { at: number; sources: SourcePart[] }>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly history: StatusHistory,
    private readonly siblings: Siblings,
  ) {
    siblings.on('status-part', (payload) => {
      const { index, sources } = payload as Shared;
      if (index !== siblings.index) this.peers.set(index, { at: Date.now(), sources });
    });
    this.timer = setInterval(this.share.bind(this), STATUS_SHARE_MS);
    this.timer.unref();
  }

  /** The other workers' latest parts. */
  parts(now = Date.now()): SourcePart[][] {
    const out: SourcePart[][] = [];
    for (const [index, peer] of this.peers) {
      if (now - peer.at > FORGET_AFTER_MS) this.peers.delete(index);
      else out.push(peer.sources);
    }
    return out;
  }

  close(): void {
    clearInterval(this.timer);
  }

  private share(): void {
    const shared: Shared = { index: this.siblings.index, sources: this.history.part() };
    this.siblings.send('status-part', shared);
  }
}
