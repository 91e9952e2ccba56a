import type { Logger } from '../logger.js';

/** What a delivery's log line carries: never the event itself. */
export interface DeliveryLogFields {
  deliveryId: string | undefined;
  operation: string;
  target: string;
  attempts: number;
  code: string | undefined;
}

type Kind = 'retrying' | 'dead';

interface Window {
  lines: number;
  suppressed: number;
  codes: Map<string, number>;
}

const SUMMARY: Record<Kind, (n: number, codes: string, seconds: number) => string> = {
  retrying: (n, codes, s) => `${n} more delivery attempts failed in the last ${s} s (${codes}); retrying with backoff`,
  dead: (n, codes, s) => `${n} more deliveries dead-lettered in the last ${s} s (${codes}): see Query.deliveries(state: FAILED), re-drive with retryDelivery`,
};

/**
 * A target down for an hour fails every delivery's every attempt: one line
 * each (ten attempts a delivery) buried the log, 4,346 dead letters at error
 * level in minutes without Redis. The first `linesPerInterval` of each kind
 * are written in full per interval, the rest summed up in one line when it
 * ends, as SourceFailureLog does for reads.
 */
export class DeliveryFailureLog {
  private readonly windows = new Map<Kind, Window>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly logger: Logger,
    private readonly linesPerInterval = 5,
    private readonly intervalMs = 10_000,
  ) {
    this.timer = setInterval(() => this.flush(), intervalMs);
    this.timer.unref();
  }

  attemptFailed(fields: DeliveryLogFields): void {
    if (this.admit('retrying', fields.code)) this.logger.warn(fields, 'Delivery attempt failed; retrying with backoff');
  }

  deadLettered(fields: DeliveryLogFields, why = 'after its last attempt'): void {
    if (this.admit('dead', fields.code)) this.logger.error(fields, `Delivery dead-lettered ${why}: see Query.deliveries(state: FAILED), re-drive with retryDelivery`);
  }

  close(): void {
    clearInterval(this.timer);
    this.flush();
  }

  /** Whether this one is written in full; else it is counted for the summary. */
  private admit(kind: Kind, code: string | undefined): boolean {
    let window = this.windows.get(kind);
    if (!window) this.windows.set(kind, (window = { lines: 0, suppressed: 0, codes: new Map() }));
    if (window.lines < this.linesPerInterval) {
      window.lines++;
      return true;
    }
    window.suppressed++;
    const key = code ?? 'unknown';
    window.codes.set(key, (window.codes.get(key) ?? 0) + 1);
    return false;
  }

  private flush(): void {
    for (const [kind, window] of this.windows) {
      if (window.suppressed > 0) {
        const codes = [...window.codes].map(([code, n]) => `${code} ${n}`).join(', ');
        const line = SUMMARY[kind](window.suppressed, codes, Math.round(this.intervalMs / 1000));
        const fields = { suppressed: window.suppressed, codes: Object.fromEntries(window.codes), intervalMs: this.intervalMs };
        if (kind === 'dead') this.logger.error(fields, line);
        else this.logger.warn(fields, line);
      }
    }
    this.windows.clear();
  }
}
