import type { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';

export interface AdmissionSettings {
  /**
   * The entity reads the requests in progress may be expected to make, summed; past it, while the event loop is
   * busy, new GraphQL requests wait in line (first come, first served) until requests finish. 0: no line.
   */
  queueAtEntityReads: number;
  /** The longest a request waits in line; past it, 503 OVERLOADED with Retry-After. */
  maxWaitMs: number;
  /** The process's CPU time per wall-clock second (over the last 100 ms; 1: a core's worth) from which it counts as busy; 0: always busy (the line is kept by reads alone). */
  busyCpu: number;
}

export interface AdmissionQueueOptions {
  /** A request waited `waitedMs` in line before it started (called only for the ones that waited). */
  onStart?: (waitedMs: number) => void;
  /** The process's CPU time per wall-clock second now (1: one core's worth). @default process.cpuUsage over the last ≥ 100 ms */
  cpu?: () => number;
}

interface Waiting {
  readonly start: () => void;
  readonly since: number;
  timer: NodeJS.Timeout | undefined;
  done: boolean;
}

/** How much each finished request moves the average reads a request makes, after the first twenty. */
const LEARNING_RATE = 0.05;
/** While requests wait, how often the line is looked at again though none finished (the loop may have gone idle). */
const RECHECK_MS = 50;

/**
 * Keeps the work in progress within what the process can do at once, and
 * makes the rest wait in line, outside the heap's way.
 *
 * Past capacity, requests queue for the CPU whether we let them or not. Let
 * in, each one holds its vendor answers and entities for the whole time it
 * waits for its turn on the event loop; a cold 50-user list lives ~300 ms
 * under load instead of ~60, its garbage outlives the young generation and
 * the old one grows by as much again (bench/RESULTS.md, "Where a cold list's
 * RSS goes"). In line, a request holds its socket and a body of a few hundred
 * bytes. The throughput is the CPU's either way; the memory is not.
 *
 * What a request will read is known only when it is done, so the line is kept
 * by count: requests in progress × the reads an average request made lately
 * (learned from each finished one, see `learn`) must stay under
 * `queueAtEntityReads`. It is kept only while the event loop is busy: when
 * the requests in progress are waiting on a slow vendor, not on the CPU, more
 * of them cost little and holding new ones back would only cap throughput.
 * One request always runs, however large. A request that waits longer than
 * `maxWaitMs` is refused (`refuse`), so the line is bounded in time as
 * LOAD_SHED_MAX_IN_FLIGHT bounds it in length.
 */
export class AdmissionQueue {
  private running = 0;
  private readonly line: Waiting[] = [];
  private head = 0;
  /** Entries in `line` still waiting (the others are refused, gone, or started, and skipped). */
  private queued = 0;
  /** Reads an average request made lately; 0 until a request has finished. */
  private averageReads = 0;
  private finished = 0;
  private recheck: NodeJS.Timeout | undefined;
  private readonly cpu: () => number;

  constructor(
    private readonly settings: AdmissionSettings,
    private readonly options: AdmissionQueueOptions = {},
  ) {
    this.cpu = options.cpu ?? processCpu();
  }

  /**
   * Runs `start` now or once there is room; `refuse` when the request waited `maxWaitMs`. A request whose client
   * hangs up while in line is dropped from it. `res` closing (its response done, or its connection gone) ends it.
   */
  admit(res: ServerResponse, start: () => void, refuse: () => void): void {
    if (this.settings.queueAtEntityReads <= 0) return start();
    if (this.queued === 0 && this.hasRoom()) return this.run(res, start);
    const entry: Waiting = { start: () => this.run(res, start), since: performance.now(), timer: undefined, done: false };
    entry.timer = setTimeout(() => {
      this.settle(entry);
      refuse();
    }, this.settings.maxWaitMs);
    res.once('close', () => {
      if (!entry.done) this.settle(entry);
    });
    this.line.push(entry);
    this.queued++;
    this.recheck ??= setInterval(() => this.pump(), RECHECK_MS);
  }

  /** A finished request made `reads` entity reads: the average follows. */
  learn(reads: number): void {
    // The plain mean of the first ones (a first cheap request does not set the average for the next twenty), then a moving one.
    this.finished++;
    this.averageReads += (reads - this.averageReads) * Math.max(LEARNING_RATE, 1 / this.finished);
    this.pump();
  }

  /** Requests waiting in line now. */
  get waiting(): number {
    return this.queued;
  }

  /** Requests let in and not yet answered. */
  get inProgress(): number {
    return this.running;
  }

  /** Stops the re-check timer (the server is closing). */
  close(): void {
    clearInterval(this.recheck);
    this.recheck = undefined;
  }

  private hasRoom(): boolean {
    if (this.running === 0 || (this.running + 1) * this.averageReads <= this.settings.queueAtEntityReads) return true;
    const { busyCpu } = this.settings;
    return busyCpu > 0 && this.cpu() < busyCpu;
  }

  private run(res: ServerResponse, start: () => void): void {
    this.running++;
    res.once('close', () => {
      this.running--;
      this.pump();
    });
    start();
  }

  private pump(): void {
    while (this.queued > 0 && this.hasRoom()) {
      const next = this.line[this.head++]!;
      if (next.done) continue;
      this.settle(next);
      this.options.onStart?.(performance.now() - next.since);
      next.start();
    }
    if (this.queued === 0) {
      this.line.length = 0;
      this.head = 0;
      this.close();
    } else if (this.head > 1024 && this.head * 2 > this.line.length) {
      this.line.splice(0, this.head);
      this.head = 0;
    }
  }

  /** The entry leaves the line: started, refused, or its client gone. */
  private settle(entry: Waiting): void {
    entry.done = true;
    clearTimeout(entry.timer);
    this.queued--;
  }
}

/** The process's CPU time (all its threads) per second of wall-clock time, over the last window of at least 100 ms, read at most once a window. */
function processCpu(windowMs = 100): () => number {
  let since = process.cpuUsage();
  let sinceAt = performance.now();
  let last = 0;
  return () => {
    const now = performance.now();
    if (now - sinceAt >= windowMs) {
      const used = process.cpuUsage(since);
      last = (used.user + used.system) / 1000 / (now - sinceAt);
      since = process.cpuUsage();
      sinceAt = now;
    }
    return last;
  };
}
