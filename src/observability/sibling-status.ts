import type { Siblings } from '../siblings.js';
import type { SourceHealthSnapshot } from './source-health.js';
import type { SourcePart } from './status-history.js';

/** What one worker sends the others: its part of `/status` (StatusHistory.part) and of `Query.sources` (SourceHealthMonitor.snapshot). */
export interface WorkerPart {
  status: SourcePart[];
  health: SourceHealthSnapshot[];
}

/** How long a worker asked for `/status` waits for the others' parts; one that has not answered by then is left out. */
export const STATUS_GATHER_MS = 500;

interface Wanted {
  from: number;
}

interface Part {
  index: number;
  to: number;
  part: WorkerPart;
}

/**
 * `/status` and `Query.sources` under WORKERS=N show the whole set, whichever
 * worker answers: asked for either, a worker asks the others for their parts
 * (a few KB each) and waits for them, at most STATUS_GATHER_MS. Nothing is
 * sent while nobody looks: a part sorts its buckets' durations. Before, each
 * refresh of the page showed the worker that happened to answer: its calls
 * alone, and drift it had seen, appearing and disappearing every 5 s.
 */
export class SiblingStatus {
  private readonly received = new Map<number, { at: number; part: WorkerPart }>();
  private readonly waiting = new Set<() => void>();

  constructor(
    /** This worker's part, made when another asks for it. */
    part: () => WorkerPart,
    private readonly siblings: Siblings,
  ) {
    siblings.on('status-wanted', (payload) => {
      const { from } = payload as Wanted;
      if (from === siblings.index) return;
      const answer: Part = { index: siblings.index, to: from, part: part() };
      siblings.send('status-part', answer);
    });
    siblings.on('status-part', (payload) => {
      const { index, to, part } = payload as Part;
      if (to !== siblings.index) return;
      this.received.set(index, { at: performance.now(), part });
      for (const wake of this.waiting) wake();
    });
  }

  /** The other workers' parts, asked for now; those that did not answer within STATUS_GATHER_MS are left out. */
  async parts(): Promise<WorkerPart[]> {
    const askedAt = performance.now();
    const others = this.siblings.count - 1;
    const fresh = () => [...this.received.values()].filter((r) => r.at >= askedAt);
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiting.delete(check);
        resolve();
      };
      const check = () => {
        if (fresh().length >= others) done();
      };
      const timer = setTimeout(done, STATUS_GATHER_MS);
      this.waiting.add(check);
      const wanted: Wanted = { from: this.siblings.index };
      this.siblings.send('status-wanted', wanted);
    });
    return fresh().map((r) => r.part);
  }
}
