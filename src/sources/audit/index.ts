import { ApiKeyAuth } from '../auth.js';
import { defineSource } from '../define-source.js';
import { AuditSource } from './audit-source.js';

/** Audit (UPSTREAMS.md): a write-only event log with Stripe-style idempotency; written from the delivery queue, where nobody waits. */
export const audit = defineSource({
  name: 'audit',
  description: 'the audit log (writes only)',
  env: { url: 'AUDIT_URL', credentials: { apiKey: 'AUDIT_API_KEY' } },
  tuning: { timeoutMs: 2000, connections: 8, rateLimitPerSec: 40, rateLimitBurst: 4 },
  create: (base, endpoint) => new AuditSource({ ...base, auth: new ApiKeyAuth('x-api-key', endpoint.apiKey) }),
});
