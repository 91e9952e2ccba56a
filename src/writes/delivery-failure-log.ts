import type { Logger } from '../logger.js';
import { codeCounts, SummarizedLines } from '../observability/summarized-lines.js';

/** What a delivery's log line carries: never the event itself. */
export interface DeliveryLogFields {
  deliveryId: string | undefined;
  operation: string;
  target: string;
  attempts: number;
  code: string | undefined;
}

type Kind = 'retrying' | 'dead';

/**
 * A target down for an hour fails every delivery's every attempt: one line
 * each (ten attempts a delivery) buried the log, 4,346 dead letters at error
 * level in minutes without Redis. The first `linesPerInterval` of each kind
 * are written in full per interval, the rest summed up in one line when it
 * ends, as SourceFailureLog does for reads.
 */
export class DeliveryFailureLog {
  private readonly lines: SummarizedLines<Kind>;

  constructor(
    private readonly logger: Logger,
    linesPerInterval = 5,
    intervalMs = 10_000,
  ) {
    this.lines = new SummarizedLines((kind, n, codes) => this.summarize(kind, n, codes), linesPerInterval, intervalMs);
  }

  attemptFailed(fields: DeliveryLogFields): void {
    if (this.lines.admit('retrying', fields.code)) this.logger.warn(fields, 'Delivery attempt failed; retrying with backoff');
  }

  deadLettered(fields: DeliveryLogFields, why = 'after its last attempt'): void {
    if (this.lines.admit('dead', fields.code)) this.logger.error(fields, `Delivery dead-lettered ${why}: see Query.deliveries(state: FAILED), re-drive with retryDelivery`);
  }

  close(): void {
    this.lines.close();
  }

  private summarize(kind: Kind, n: number, codes: Map<string, number>): void {
    const seconds = Math.round(this.lines.intervalMs / 1000);
    const fields = { suppressed: n, codes: Object.fromEntries(codes), intervalMs: this.lines.intervalMs };
    if (kind === 'dead')
      this.logger.error(
        fields,
        `${n} more deliveries dead-lettered in the last ${seconds} s (${codeCounts(codes)}): see Query.deliveries(state: FAILED), re-drive with retryDelivery`,
      );
    else this.logger.warn(fields, `${n} more delivery attempts failed in the last ${seconds} s (${codeCounts(codes)}); retrying with backoff`);
  }
}
