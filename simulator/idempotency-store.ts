import type { Reply } from './simulated-server.js';

/**
 * Stripe-style idempotency for the simulated write APIs: the first answer to a
 * key is kept for 24 h and replayed byte for byte; the same key with a
 * different body is refused with 422 and writes nothing.
 */
const TTL_MS = 24 * 3_600_000;

interface Stored {
  fingerprint: string;
  status: number;
  rawBody: string;
  expiresAt: number;
}

export class IdempotencyStore {
  private readonly entries = new Map<string, Stored>();

  /** Runs `write` once per key; later calls with the key get the first reply again. */
  async once(key: string | undefined, body: unknown, write: () => Reply | Promise<Reply>): Promise<Reply> {
    if (key === undefined || key === '') return write();
    const fingerprint = JSON.stringify(body ?? null);
    const now = Date.now();
    const stored = this.entries.get(key);
    if (stored && stored.expiresAt > now) {
      if (stored.fingerprint !== fingerprint) {
        return { status: 422, body: { error: 'idempotency_key_reused', message: 'This Idempotency-Key was used with a different body.' } };
      }
      return { status: stored.status, rawBody: stored.rawBody, headers: { 'idempotent-replayed': 'true' } };
    }
    const reply = await write();
    // Only successful writes are kept: a failed one did not happen, so a retry must be allowed to.
    if (reply.status < 300) {
      const rawBody = reply.rawBody ?? JSON.stringify(reply.body ?? null);
      this.entries.set(key, { fingerprint, status: reply.status, rawBody, expiresAt: now + TTL_MS });
      return { status: reply.status, rawBody, ...(reply.headers ? { headers: reply.headers } : {}) };
    }
    return reply;
  }
}

export function idempotencyKeyOf(headers: Record<string, string | string[] | undefined>): string | undefined {
  const value = headers['idempotency-key'];
  return Array.isArray(value) ? value[0] : value;
}
