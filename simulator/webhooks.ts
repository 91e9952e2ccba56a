import { createHmac, randomUUID } from 'node:crypto';
import { z } from 'zod';

/**
 * The notifications vendor's webhooks (UPSTREAMS.md): for each change, a POST
 * of `{"type","timestamp","data"}` to the receiver, signed per the Standard
 * Webhooks spec (`webhook-id`, `webhook-timestamp`, `webhook-signature:
 * v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, the key being the
 * base64 part of `whsec_…`). Any 2xx within 5 s is success; anything else is
 * retried on a schedule (about 5 s, 30 s, 2 min, 10 min; tests shorten it),
 * and like a real vendor it may deliver an event twice (`duplicateRate`), send
 * it again as a new event under a new webhook-id (`resignRate`), and deliver
 * events out of order (`jitterMs`).
 */
export const webhookTargetSchema = z
  .object({
    url: z.url(),
    secret: z.string().regex(/^whsec_[A-Za-z0-9+/=]+$/, 'must be whsec_<base64>'),
    /** Waits before each retry; when they run out, the event is dropped (counted). */
    retryDelaysMs: z.array(z.number().int().min(0).max(3_600_000)).max(20).default([5_000, 30_000, 120_000, 600_000]),
    /** Share of events sent twice (the second after a short delay), as vendors do after a lost ack. */
    duplicateRate: z.number().min(0).max(1).default(0),
    /** Share of events sent again as a new event: a new webhook-id, signed anew (a vendor that re-signs its retries, or replays from its log). */
    resignRate: z.number().min(0).max(1).default(0),
    /** Each attempt waits a random 0..jitterMs before it is sent, so events arrive out of order. */
    jitterMs: z.number().int().min(0).max(60_000).default(0),
    /**
     * `milliseconds`: webhook-timestamp as Unix milliseconds (Date.now()); `fractional-seconds`: seconds with a fraction
     * (Python's time.time()); not the spec's whole seconds, as some vendors send it.
     */
    timestampUnit: z.enum(['seconds', 'milliseconds', 'fractional-seconds']).default('seconds'),
  })
  .strict();
export type WebhookTarget = z.infer<typeof webhookTargetSchema>;

export interface WebhookStats {
  sent: number;
  delivered: number;
  failedAttempts: number;
  /** Events whose every attempt failed: never delivered. */
  dropped: number;
  /** The extra copies sent under `duplicateRate` (as after a lost ack): answered 2xx, or not (not retried, never dropped). */
  duplicatesDelivered: number;
  duplicatesFailed: number;
  /** Attempts waiting for their time or under way: 0 once every event was delivered or dropped. */
  pending: number;
}

const ATTEMPT_TIMEOUT_MS = 5000;
/** The retry number of a duplicate copy: counted apart from the event's own attempts, never retried. */
const DUPLICATE = -1;

export class WebhookSender {
  private target: WebhookTarget | null = null;
  private stats = { sent: 0, delivered: 0, failedAttempts: 0, dropped: 0, duplicatesDelivered: 0, duplicatesFailed: 0 };
  private readonly timers = new Set<NodeJS.Timeout>();
  private inFlight = 0;

  configure(target: WebhookTarget | null): void {
    this.target = target;
    this.stats = { sent: 0, delivered: 0, failedAttempts: 0, dropped: 0, duplicatesDelivered: 0, duplicatesFailed: 0 };
  }

  snapshot(): WebhookStats & { configured: boolean } {
    return { ...this.stats, pending: this.timers.size + this.inFlight, configured: this.target !== null };
  }

  /** One event: signed and sent now, retried on the schedule until a 2xx. */
  emit(type: 'notification.created' | 'notification.read', data: unknown): void {
    const target = this.target;
    if (!target) return;
    const id = `msg_${randomUUID().replaceAll('-', '')}`;
    const body = JSON.stringify({ type, timestamp: new Date().toISOString(), data });
    this.stats.sent++;
    if (target.jitterMs === 0) void this.attempt(target, id, body, 0);
    else this.later(this.jitter(target), () => void this.attempt(target, id, body, 0));
    if (target.duplicateRate > 0 && Math.random() < target.duplicateRate) this.later(50 + this.jitter(target), () => void this.attempt(target, id, body, DUPLICATE));
    if (target.resignRate > 0 && Math.random() < target.resignRate) {
      const again = `msg_${randomUUID().replaceAll('-', '')}`;
      this.stats.sent++;
      this.later(50 + this.jitter(target), () => void this.attempt(target, again, body, 0));
    }
  }

  private jitter(target: WebhookTarget): number {
    return target.jitterMs > 0 ? Math.floor(Math.random() * target.jitterMs) : 0;
  }

  private async attempt(target: WebhookTarget, id: string, body: string, retry: number): Promise<void> {
    this.inFlight++;
    try {
      await this.deliver(target, id, body, retry);
    } finally {
      this.inFlight--;
    }
  }

  private async deliver(target: WebhookTarget, id: string, body: string, retry: number): Promise<void> {
    // A retry is signed anew, with its own timestamp, as the spec has it.
    const timestamp =
      target.timestampUnit === 'milliseconds' ? Date.now() : target.timestampUnit === 'fractional-seconds' ? (Date.now() / 1000).toFixed(3) : Math.floor(Date.now() / 1000);
    const key = Buffer.from(target.secret.slice('whsec_'.length), 'base64');
    const signature = createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64');
    let ok = false;
    try {
      const res = await fetch(target.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(timestamp), 'webhook-signature': `v1,${signature}` },
        body,
        signal: AbortSignal.timeout(ATTEMPT_TIMEOUT_MS),
      });
      await res.arrayBuffer();
      ok = res.status >= 200 && res.status < 300;
    } catch {
      ok = false;
    }
    if (retry === DUPLICATE) {
      if (ok) this.stats.duplicatesDelivered++;
      else this.stats.duplicatesFailed++;
      return;
    }
    if (ok) {
      this.stats.delivered++;
      return;
    }
    this.stats.failedAttempts++;
    const delay = target.retryDelaysMs[retry];
    if (delay === undefined || this.target !== target) {
      this.stats.dropped++;
      return;
    }
    this.later(delay + this.jitter(target), () => void this.attempt(target, id, body, retry + 1));
  }

  private later(ms: number, f: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      f();
    }, ms);
    timer.unref();
    this.timers.add(timer);
  }

  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
