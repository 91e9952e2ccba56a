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

/** What a primary write's log line carries: never the input. */
export interface PrimaryLogFields {
  operation: string;
  target: string;
  code: string | undefined;
}

type Kind = 'retrying' | 'dead' | 'in memory' | 'unchecked' | 'primary' | 'unread';

/**
 * A target down for an hour fails every delivery's every attempt: one line
 * each (ten attempts a delivery) buried the log, 4,346 dead letters at error
 * level in minutes without Redis. A Redis outage put every write's delivery
 * in memory, one line each: 591 in a 150 s chaos run, as many as the writes
 * meanwhile; an identity outage, every write's unchecked user. Per kind (and
 * target), the first `linesPerInterval` are written in full per interval, the
 * rest summed up in one line when it ends, as SourceFailureLog does for reads.
 */
export class DeliveryFailureLog {
  private readonly lines: SummarizedLines<Kind>;

  constructor(
    private readonly logger: Logger,
    linesPerInterval = 5,
    intervalMs = 10_000,
  ) {
    this.lines = new SummarizedLines((kind, n, codes, target) => this.summarize(kind, target, n, codes), linesPerInterval, intervalMs);
  }

  attemptFailed(fields: DeliveryLogFields): void {
    if (this.admit('retrying', fields.target, fields.code)) this.logger.warn(fields, 'Delivery attempt failed; retrying with backoff');
  }

  deadLettered(fields: DeliveryLogFields, why = 'after its last attempt'): void {
    if (this.admit('dead', fields.target, fields.code)) {
      this.logger.error(fields, `Delivery dead-lettered ${why}: see Query.deliveries(state: FAILED), re-drive with retryDelivery`);
    }
  }

  /** Redis away or hung at the moment of a write: its delivery waits in this process. The reason, not a stack. */
  keptInMemory(operation: string, reason: string): void {
    if (this.admit('in memory', 'all targets', reason)) this.logger.warn({ reason, operation }, 'Durable delivery queue unavailable: this delivery is kept in memory only');
  }

  /** Identity could not say whether a write's user exists; the write goes on and its target says. */
  userUnchecked(code: string): void {
    if (this.admit('unchecked', 'identity', code)) this.logger.warn({ code }, 'Could not check that the user exists before a write; relying on the target to say');
  }

  primaryFailed(fields: PrimaryLogFields): void {
    if (this.admit('primary', fields.target, fields.code)) this.logger.warn(fields, 'Primary write failed');
  }

  primaryUnread(fields: PrimaryLogFields & { status: number | undefined; detail: string | undefined }): void {
    if (this.admit('unread', fields.target, fields.code)) this.logger.warn(fields, 'Primary write accepted, but its answer could not be read: the payload carries no result');
  }

  close(): void {
    this.lines.close();
  }

  private admit(kind: Kind, target: string, code: string | undefined): boolean {
    return this.lines.admit(kind, code, target);
  }

  private summarize(kind: Kind, target: string, n: number, codes: Map<string, number>): void {
    const seconds = Math.round(this.lines.intervalMs / 1000);
    const counts = codeCounts(codes);
    const fields = { target, suppressed: n, codes: Object.fromEntries(codes), intervalMs: this.lines.intervalMs };
    const said: Record<Kind, string> = {
      dead: `${n} more deliveries dead-lettered in the last ${seconds} s (${counts}): see Query.deliveries(state: FAILED), re-drive with retryDelivery`,
      retrying: `${n} more delivery attempts failed in the last ${seconds} s (${counts}); retrying with backoff`,
      'in memory': `${n} more deliveries were kept in memory only in the last ${seconds} s, the durable queue unavailable (${counts})`,
      unchecked: `${n} more writes went on in the last ${seconds} s without checking that their user exists (${counts}); their targets say`,
      primary: `${n} more primary writes to ${target} failed in the last ${seconds} s (${counts})`,
      unread: `${n} more primary writes to ${target} were accepted in the last ${seconds} s, but their answers could not be read (${counts}): those payloads carry no result`,
    };
    if (kind === 'dead') this.logger.error(fields, said.dead);
    else this.logger.warn(fields, said[kind]);
  }
}
