import type { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import Denque from 'denque';

export interface AdmissionSettings {
  /**
   * The entity reads the requests in progress may be expected to make, summed; past it new GraphQL requests wait
   * in line (first come, first served) until requests finish. 0: no line.
   */
  queueAtEntityReads: number;
  /** The longest a request waits in line; past it, 503 OVERLOADED with Retry-After. */
  maxWaitMs: number;
}

export interface AdmissionQueueOptions {
  /** A request waited `waitedMs` in line before it started (called only for the ones that waited). */
  onStart?: (waitedMs: number) => void;
  /** The entity reads the requests in progress have made so far, summed (before any has finished, all that is known of them). */
  readsSoFar?: () => number;
}

interface Waiting {
  /** Starts the request; undefined once it has left the line, so a settled entry holds nothing of its request. */
  start: (() => void) | undefined;
  readonly since: number;
  timer: NodeJS.Timeout | undefined;
}

/** How much each finished request moves the average reads a request makes, after the first twenty. */
const LEARNING_RATE = 0.05;

/** Before any request has finished, how many may run once waiters' `maxWaitMs` runs out (the class comment says why). */
export const RUNNING_BEFORE_LEARNING = 8;

/**
 * Past those, before any request has finished, the fewest reads each running one is taken to make, whatever it has
 * made so far: a list of users waiting on identity has made one read, and will make three a user once it answers.
 */
export const READS_ASSUMED_BEFORE_LEARNING = 50;

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
 * `queueAtEntityReads`. One request always runs, however large; until one
 * has finished, only one runs. A request that waits longer than `maxWaitMs`
 * is refused (`refuse`), so the line is bounded in time as
 * LOAD_SHED_MAX_IN_FLIGHT bounds it in length. Before anything is learned, a
 * request whose wait runs out goes in instead while fewer than
 * `RUNNING_BEFORE_LEARNING` run: the first may be held up by a stalled vendor
 * (refusing the rest turned a restart into 503s at any load), but the ones in
 * line passed the load shedder's checks with nothing running, so letting them
 * all in would let a crowd past every bound at once (session 33, identity
 * stalled). Past those few, it still goes in while the running ones, each
 * taken to make the reads it has made so far or `READS_ASSUMED_BEFORE_LEARNING`,
 * whichever is more, leave room for one more (60 of 3,000): after a restart
 * with every vendor stalled, 40 dashboards at once (7 reads each) had 18
 * refused though they held 53 reads in all (session 45). A crowd of large
 * lists, hundreds of reads each by then, stays out.
 *
 * The line is kept whether the process is busy or waiting on a slow vendor:
 * kept only while its CPU was high, on a shared machine it let bursts in each
 * time a 100 ms reading dipped, and a cold list peaked at 199–206 MB against
 * 188–202 kept always (bench/RESULTS.md, session 16). Requests waiting on vendors hold their
 * entities long enough to be promoted too. The price: throughput is capped at
 * `queueAtEntityReads` / reads a request / its latency (at 3,000, 50-user
 * lists of 250 reads and vendors at 400 ms, 30 a second), which the wait histogram shows.
 */
export class AdmissionQueue {
  private running = 0;
  /**
   * A request in line reaches its parsed body (a 500-user list's is ~60 KB): taken entries leave the deque, and
   * settled ones let go of their request, though under steady overload the line never empties (session 33).
   */
  private readonly line = new Denque<Waiting>();
  /** Entries in `line` still waiting (the others are refused or gone, and skipped). */
  private queued = 0;
  /** Reads an average request made lately; unknown (0) until a request has finished. */
  private averageReads = 0;
  private finished = 0;

  constructor(
    private readonly settings: AdmissionSettings,
    private readonly options: AdmissionQueueOptions = {},
  ) {}

  /**
   * Runs `start` now or once there is room; `refuse` when the request waited `maxWaitMs`. A request whose client
   * hangs up while in line is dropped from it. `res` closing (its response done, or its connection gone) ends it.
   */
  admit(res: ServerResponse, start: () => void, refuse: () => void): void {
    if (this.settings.queueAtEntityReads <= 0) return start();
    if (this.queued === 0 && this.hasRoom()) return this.run(res, start);
    // Bound methods, not closures: a closure made per request has its optimized code dropped at every full
    // collection and compiled again (bench/RESULTS.md, session 36).
    const entry: Waiting = { start: this.run.bind(this, res, start), since: performance.now(), timer: undefined };
    entry.timer = setTimeout(this.waitedTooLong.bind(this, entry, refuse), this.settings.maxWaitMs);
    res.once('close', this.leftLine.bind(this, entry));
    this.line.push(entry);
    this.queued++;
  }

  /** `maxWaitMs` ran out in line: refused, unless nothing is learned yet and few run (see the class comment). */
  private waitedTooLong(entry: Waiting, refuse: () => void): void {
    if (this.finished === 0 && (this.running < RUNNING_BEFORE_LEARNING || this.roomByReadsSoFar())) return this.begin(entry, entry.start!);
    this.settle(entry);
    refuse();
  }

  /** Nothing learned yet: the running requests, each taken to make its reads so far or the assumed floor, leave room for one more. */
  private roomByReadsSoFar(): boolean {
    const soFar = this.options.readsSoFar?.();
    if (soFar === undefined) return false;
    return (this.running + 1) * Math.max(soFar / this.running, READS_ASSUMED_BEFORE_LEARNING) <= this.settings.queueAtEntityReads;
  }

  /** The client hung up: its entry leaves the line if it is still in it. */
  private leftLine(entry: Waiting): void {
    if (entry.start) this.settle(entry);
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

  /** Reads an average request made lately (for the log line of a refusal). */
  get averageRequestReads(): number {
    return Math.round(this.averageReads);
  }

  private hasRoom(): boolean {
    if (this.running === 0) return true;
    // Nothing learned yet (a process just started, under load): one at a time until a request has finished. A burst of
    // 50 requests of 500 users all let in at once held 25,000 entities and could take longer than their deadline
    // (bench/RESULTS.md, session 33); the first finished request, a few tens of ms in, sets the pace.
    return this.finished > 0 && (this.running + 1) * this.averageReads <= this.settings.queueAtEntityReads;
  }

  private run(res: ServerResponse, start: () => void): void {
    this.running++;
    res.once('close', this.ended);
    start();
  }

  /** A request that ran is answered or its connection is gone: its room goes to the next in line. */
  private readonly ended = (): void => {
    this.running--;
    this.pump();
  };

  private pump(): void {
    while (this.queued > 0 && this.hasRoom()) {
      const next = this.line.shift()!;
      const start = next.start;
      if (start) this.begin(next, start);
    }
    if (this.queued === 0) this.line.clear();
  }

  /** The entry leaves the line to run. */
  private begin(entry: Waiting, start: () => void): void {
    this.settle(entry);
    this.options.onStart?.(performance.now() - entry.since);
    start();
  }

  /** The entry leaves the line: started, refused, or its client gone. */
  private settle(entry: Waiting): void {
    entry.start = undefined;
    clearTimeout(entry.timer);
    entry.timer = undefined;
    this.queued--;
  }
}
