import type { Logger } from '../logger.js';
import { codeCounts, SummarizedLines } from '../observability/summarized-lines.js';

type Kind = 'refused' | 'not stored' | 'processing' | 'settle';

/**
 * A Redis outage refuses every webhook event the vendors send, and fails
 * every job under way: one line each wrote 421 warn lines in one 150 s chaos
 * run. A wrong secret refuses every event too. Per source and kind, the first `linesPerInterval` are written in
 * full per interval, the rest summed up in one line when it ends (as
 * DeliveryFailureLog does for writes), counted by what went wrong.
 */
export class WebhookFailureLog {
  private readonly lines: SummarizedLines<Kind>;

  constructor(
    private readonly logger: Logger,
    linesPerInterval = 5,
    intervalMs = 10_000,
  ) {
    this.lines = new SummarizedLines((kind, n, causes, source) => this.summarize(kind, source, n, causes), linesPerInterval, intervalMs);
  }

  /**
   * Refused (400, 401): a secret not rotated on both sides, or a clock that is off, refuses every event the vendor
   * sends, one line each. The reason is ours to log, not the caller's to learn.
   */
  refused(source: string, cause: string, reason: string): void {
    if (this.lines.admit('refused', cause, source)) this.logger.warn({ source, reason }, 'Webhook refused');
  }

  /** Not stored: answered 503, and the vendor sends it again on its schedule. */
  notStored(source: string, webhookId: string, err: string): void {
    if (this.lines.admit('not stored', err, source)) this.logger.warn({ source, webhookId, err }, 'Webhook event could not be stored; the vendor will retry');
  }

  /** Stored, but processing it failed; `retrying` says whether another attempt follows. */
  processingFailed(source: string | undefined, webhookId: string | undefined, attempts: number | undefined, err: string, retrying: boolean): void {
    if (!this.lines.admit('processing', err, source ?? 'unknown')) return;
    this.logger.warn({ source, webhookId, attempts, err }, retrying ? 'Webhook event processing failed; retrying' : 'Webhook event processing failed');
  }

  /** Dropping an event's entries again once the vendor's reads settled (or telling subscribers again) failed. */
  settleFailed(err: string): void {
    if (this.lines.admit('settle', err, 'all sources')) {
      this.logger.warn({ err }, 'Dropping the entries of a webhook event again, or telling subscribers again, failed; the entries expire by TTL');
    }
  }

  close(): void {
    this.lines.close();
  }

  private summarize(kind: Kind, source: string, n: number, causes: Map<string, number>): void {
    const seconds = Math.round(this.lines.intervalMs / 1000);
    const fields = { source, suppressed: n, causes: Object.fromEntries(causes), intervalMs: this.lines.intervalMs };
    if (kind === 'settle')
      this.logger.warn(fields, `${n} more webhook events could not be dropped or told again in the last ${seconds} s (${codeCounts(causes)}); their entries expire by TTL`);
    else if (kind === 'refused')
      this.logger.warn(fields, `${n} more ${source} webhook events were refused in the last ${seconds} s (${codeCounts(causes)}); the first lines say why`);
    else if (kind === 'not stored')
      this.logger.warn(fields, `${n} more ${source} webhook events could not be stored in the last ${seconds} s (${codeCounts(causes)}); the vendor will retry`);
    else this.logger.warn(fields, `${n} more ${source} webhook events failed processing in the last ${seconds} s (${codeCounts(causes)})`);
  }
}
