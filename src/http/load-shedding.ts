import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';

export interface LoadSheddingSettings {
  /** GraphQL requests in progress at once; past it new ones get 503. 0: no bound. */
  maxInFlight: number;
  /** The event loop's p99 delay over each 500 ms; past it in two readings running, new requests get 503 until it is back under. 0: not watched. */
  maxEventLoopDelayMs: number;
  /** Heap used as a share of V8's heap limit; past it new requests get 503 (before the heap runs out). 0: not watched. */
  maxHeapUsedRatio: number;
  /**
   * Entity reads of the requests in progress, summed; past it new requests get 503. What they hold in memory grows
   * with it, whatever the size of the queries (a dashboard makes 7 reads, a list of 500 users' names, metrics and unread
   * counts 2,500: a field started ahead counts when started and again when read). 0: no bound.
   */
  maxEntityReads: number;
}

/** Why a request was refused; `queue_wait`: it waited LOAD_QUEUE_MAX_WAIT_MS in the admission queue (admission-queue.ts). */
export type ShedReason = 'in_flight' | 'entity_reads' | 'event_loop_delay' | 'heap' | 'queue_wait';

export interface LoadShedderOptions {
  /** Told when refusals start (the reason) and stop (null), with the reading that decided it. */
  onPressure?: (reason: ShedReason | null, reading: { eventLoopDelayP99Ms: number; heapUsedRatio: number }) => void;
  /** How often the loop delay and the heap are read; 0: only when `sample()` is called. @default 500 */
  sampleEveryMs?: number;
  /** The entity reads of the requests in progress now (ReadsInFlight). */
  entityReads?: () => number;
}

/** How often the loop delay and the heap are read. */
const SAMPLE_EVERY_MS = 500;

/**
 * Refuses new GraphQL requests with 503, Retry-After and OVERLOADED when the
 * server is past what it can take — too many requests at once, too much work
 * under way, an event loop falling behind, a heap near its limit — so that it keeps answering the ones
 * it has within their deadlines instead of slowing all of them down or
 * running out of memory. A refusal costs no parse and no upstream call; a
 * client (or a load balancer) tries again after Retry-After, elsewhere when
 * there is an elsewhere. The measures are read every 500 ms (what
 * @fastify/under-pressure reads; that plugin is for fastify only).
 */
export class LoadShedder {
  private inFlight = 0;
  private pressure: ShedReason | null = null;
  private readonly delay: IntervalHistogram | null;
  private readonly timer: NodeJS.Timeout | null;
  private readonly heapLimit = getHeapStatistics().heap_size_limit;
  /** The last reading, for the log lines. */
  readonly last = { eventLoopDelayP99Ms: 0, heapUsedRatio: 0 };

  private readonly onPressure: NonNullable<LoadShedderOptions['onPressure']>;
  private readonly entityReads: () => number;

  constructor(
    private readonly settings: LoadSheddingSettings,
    { onPressure = () => {}, sampleEveryMs = SAMPLE_EVERY_MS, entityReads = () => 0 }: LoadShedderOptions = {},
  ) {
    this.onPressure = onPressure;
    this.entityReads = entityReads;
    const watching = sampleEveryMs > 0 && (settings.maxEventLoopDelayMs > 0 || settings.maxHeapUsedRatio > 0);
    this.delay = settings.maxEventLoopDelayMs > 0 ? monitorEventLoopDelay({ resolution: 10 }) : null;
    this.delay?.enable();
    this.timer = watching ? setInterval(() => this.sample(), sampleEveryMs).unref() : null;
  }

  /** Why a new request is refused now, or null when it may go on. */
  refuses(): ShedReason | null {
    if (this.settings.maxInFlight > 0 && this.inFlight >= this.settings.maxInFlight) return 'in_flight';
    if (this.settings.maxEntityReads > 0 && this.entityReads() >= this.settings.maxEntityReads) return 'entity_reads';
    return this.pressure;
  }

  /** Counts a request in flight until its response is finished or its connection closes. */
  track(res: ServerResponse): void {
    this.inFlight++;
    res.once('close', this.untrack);
  }

  private readonly untrack = (): void => {
    this.inFlight--;
  };

  get requestsInFlight(): number {
    return this.inFlight;
  }

  /** Reads the loop delay and the heap now (every 500 ms on its own). */
  sample(): void {
    const { maxEventLoopDelayMs, maxHeapUsedRatio } = this.settings;
    const behindBefore = maxEventLoopDelayMs > 0 && this.last.eventLoopDelayP99Ms > maxEventLoopDelayMs;
    if (this.delay) {
      // The histogram is in ns; its floor is the 10 ms resolution the timer itself sleeps.
      this.last.eventLoopDelayP99Ms = Math.max(0, this.delay.percentile(99) / 1e6 - 10);
      this.delay.reset();
    }
    // Behind in two readings running, not one: a single long task (the first GraphiQL page loading its bundle,
    // a major GC) is not overload, and refusing the requests right after it only fails them.
    const behind = behindBefore && maxEventLoopDelayMs > 0 && this.last.eventLoopDelayP99Ms > maxEventLoopDelayMs;
    if (maxHeapUsedRatio > 0) this.last.heapUsedRatio = getHeapStatistics().used_heap_size / this.heapLimit;
    const before = this.pressure;
    this.pressure = behind ? 'event_loop_delay' : maxHeapUsedRatio > 0 && this.last.heapUsedRatio > maxHeapUsedRatio ? 'heap' : null;
    if (this.pressure !== before) this.onPressure(this.pressure, this.last);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.delay?.disable();
  }
}

/** The refusal: 503, Retry-After 1 s, and a GraphQL error a client's code can switch on; with CORS headers, so a browser sees it. */
export function refuseOverloaded(res: ServerResponse, reason: ShedReason, cors: OutgoingHttpHeaders = {}): void {
  const body = JSON.stringify({
    errors: [{ message: 'The server is over capacity; retry after 1 s.', extensions: { code: 'OVERLOADED', reason, retryAfterSeconds: 1 } }],
  });
  res.writeHead(503, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'retry-after': '1', ...cors });
  res.end(body);
}
