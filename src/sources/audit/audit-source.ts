import { z } from 'zod';
import type { Deadline } from '../../resilience/deadline.js';
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

export class AuditSource extends HttpSource {
  /** Records one event; the same idempotency key again records nothing new. */
  async record(event: AuditEventInput, idempotencyKey: string, deadline?: Deadline): Promise<{ id: string; receivedAt: string }> {
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
  }
}
