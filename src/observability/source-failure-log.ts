import type { SourceErrorCode, SourceName } from '../errors.js';
import type { Logger } from '../logger.js';
import { codeCounts, SummarizedLines } from './summarized-lines.js';

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

/**
 * Expected vendor failures are an operator's business, not an emergency: one
 * warn line per source per request (code, source, request id, what failed),
 * never a stack. When a vendor is down, every request would say the same, so
 * after `linesPerInterval` lines for a source the rest of the interval is
 * counted and written as one summary line when it ends.
 */
export class SourceFailureLog {
  private readonly lines: SummarizedLines<SourceName>;

  constructor(
    private readonly logger: Logger,
    options: SourceFailureLogOptions = {},
  ) {
    this.lines = new SummarizedLines(
      (source, suppressed, codes) =>
        this.logger.warn(
          { source, requests: suppressed, codes: Object.fromEntries(codes), intervalMs: this.lines.intervalMs },
          `${source} failed for ${suppressed} more requests in the last ${this.lines.intervalMs / 1000} s (${codeCounts(codes)})`,
        ),
      options.linesPerInterval ?? 5,
      options.intervalMs ?? 10_000,
    );
  }

  record(requestId: string, operation: string | null, failure: SourceFailure): void {
    if (this.lines.admit(failure.source, failure.code)) this.logger.warn({ requestId, operation, ...failure }, `${failure.source} failed for this request: ${failure.code}`);
  }

  /** Writes the summaries of the interval that ended and starts the next. */
  flush(): void {
    this.lines.flush();
  }

  close(): void {
    this.lines.close();
  }
}
