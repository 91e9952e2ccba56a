import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { IdempotencyStore } from './idempotency-store.js';
import { json, type Reply, type UpstreamApi, type UpstreamRequest } from './simulated-server.js';

/** Audit: a write-only event log with Stripe-style idempotency, X-API-Key, 429 with Retry-After seconds. */
const eventBody = z.object({
  actor: z.string().min(1),
  action: z.string().min(1),
  target: z.string().min(1),
  at: z.iso.datetime({ offset: true }),
  details: z.record(z.string(), z.unknown()).default({}),
});

interface AuditEvent extends z.infer<typeof eventBody> {
  id: string;
  received_at: string;
}

export function auditApi(apiKey: string): UpstreamApi {
  const idempotency = new IdempotencyStore();
  const events: AuditEvent[] = [];

  const record = (req: UpstreamRequest): Promise<Reply> =>
    idempotency.once(req, () => {
      const parsed = eventBody.safeParse(req.body);
      if (!parsed.success) return json(400, { error: 'invalid_request', message: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') });
      const event: AuditEvent = { ...parsed.data, id: `evt_${randomUUID().replaceAll('-', '')}`, received_at: new Date().toISOString() };
      events.push(event);
      return json(202, { id: event.id, received_at: event.received_at });
    });

  const list = (req: UpstreamRequest): Reply => {
    const target = req.query.get('target');
    const limit = Math.min(1000, Math.max(1, Number(req.query.get('limit') ?? '100') || 100));
    const matched = events.filter((e) => target === null || e.target === target);
    return json(200, { data: matched.slice(-limit).reverse() });
  };

  return {
    name: 'audit',
    routes: [
      { method: 'POST', name: 'POST /v1/events', pattern: /^\/v1\/events$/, handler: record },
      { method: 'GET', name: 'GET /v1/events', pattern: /^\/v1\/events$/, handler: list },
    ],
    authenticate: (req) => (req.headers['x-api-key'] === apiKey ? null : json(401, { error: 'invalid_api_key' })),
    rateLimited: (window) => json(429, { error: 'rate_limited' }, { 'retry-after': String(Math.max(1, window.resetSec - window.nowSec)) }),
  };
}
