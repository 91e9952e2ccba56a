import { z } from 'zod';
import type { Deadline } from '../../resilience/deadline.js';
import { SourceError } from '../../errors.js';
import { HttpSource } from '../http-source.js';
import { isoFromDateString } from '../normalize.js';

/** Audit: a write-only event log with Stripe-style idempotency. */
export interface AuditEventInput {
  actor: string;
  action: string;
  target: string;
  at: string;
  details: Record<string, unknown>;
}

const accepted = z.object({ id: z.string(), received_at: isoFromDateString });

/**
 * A 422 whose error code names idempotency: the key was used before with
 * another body (Stripe's `idempotency_error`, the IETF draft's key mismatch,
 * the simulator's `idempotency_key_reused`). A 422 for anything else (a
 * vendor's validation) is not this.
 */
const KEY_REUSED = /idempot/i;

export class AuditSource extends HttpSource {
  /**
   * Records one event; the same idempotency key again records nothing new.
   * Null: the vendor already holds an event under this key and refused this
   * body for it. Our keys are one per write and target, so that event is this
   * write's; only its `at` differs (a client repeating a write whose first
   * delivery Redis lost sends the event again, made anew).
   */
  async record(event: AuditEventInput, idempotencyKey: string, deadline?: Deadline): Promise<{ id: string; receivedAt: string } | null> {
    try {
      const res = await this.fetch({
        route: 'POST /v1/events',
        method: 'POST',
        path: '/v1/events',
        body: event,
        headers: { 'idempotency-key': idempotencyKey },
        schema: accepted,
        deadline,
      });
      return { id: res.body.id, receivedAt: res.body.received_at };
    } catch (error) {
      if (error instanceof SourceError && error.status === 422 && KEY_REUSED.test(error.vendorCode ?? '')) return null;
      throw error;
    }
  }
}
