import type { SourceErrorCode, SourceName } from '../errors.js';
import type { Logger } from '../logger.js';

/** What one request saw of one source's failure. */
export interface SourceFailure {
  source: SourceName;
  code: SourceErrorCode;
  /** Fields that failed (null with an error) or were served stale because of it. */
  fields: number;
  stale: number;
  /** For the operator: status, route, which part of the answer did not read. Never a body or a secret. */
  detail?: string | undefined;
  status?: number | undefined;
}

export interface SourceFailureLogOptions {
  /** Lines per source written in full per interval before the rest are summed up. @default 5 */
  linesPerInterval?: number;
  /** @default 10_000 */
  intervalMs?: number;
}

interface Window {
  lines: number;
  suppressed: number;
  codes: Map<SourceErrorCode, number>;
}

/**
 * Expected vendor failures are an operator's business, not an emergency: one
 * warn line per source per request (code, source, request id, what failed),
 * never a stack. When a vendor is down, every request would say the same, so
 * after `linesPerInterval` lines for a source the rest of the interval is
 * counted and written as one summary line when it ends.
 */
export class SourceFailureLog {
  private readonly windows = new Map<SourceName, Window>();
  private readonly timer: NodeJS.Timeout;
  private readonly linesPerInterval: number;
  private readonly intervalMs: number;

  constructor(
    private readonly logger: Logger,
    options: SourceFailureLogOptions = {},
  ) {
    this.linesPerInterval = options.linesPerInterval ?? 5;
    this.intervalMs = options.intervalMs ?? 10_000;
    this.timer = setInterval(() => this.flush(), this.intervalMs);
    this.timer.unref();
  }

  record(requestId: string, operation: string | null, failure: SourceFailure): void {
    let window = this.windows.get(failure.source);
    if (!window) this.windows.set(failure.source, (window = { lines: 0, suppressed: 0, codes: new Map() }));
    if (window.lines < this.linesPerInterval) {
      window.lines++;
      this.logger.warn({ requestId, operation, ...failure }, `${failure.source} failed for this request: ${failure.code}`);
      return;
    }
    window.suppressed++;
    window.codes.set(failure.code, (window.codes.get(failure.code) ?? 0) + 1);
  }

  /** Writes the summaries of the interval that ended and starts the next. */
  flush(): void {
    for (const [source, window] of this.windows) {
      if (window.suppressed > 0) {
        const codes = Object.fromEntries(window.codes);
        this.logger.warn(
          { source, requests: window.suppressed, codes, intervalMs: this.intervalMs },
          `${source} failed for ${window.suppressed} more requests in the last ${this.intervalMs / 1000} s (${[...window.codes].map(([c, n]) => `${c} ${n}`).join(', ')})`,
        );
      }
    }
    this.windows.clear();
  }

  close(): void {
    clearInterval(this.timer);
    this.flush();
  }
}
