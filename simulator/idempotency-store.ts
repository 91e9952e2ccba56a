import { setTimeout as sleep } from 'node:timers/promises';
import type { Reply, UpstreamRequest } from './simulated-server.js';

/**
 * Stripe-style idempotency for the simulated write APIs: the first answer to a
 * key is kept for 24 h and replayed byte for byte; the same key with a
 * different body is refused with 422 and writes nothing; the same key while
 * its first request is still being processed is refused with 409, as the IETF
 * Idempotency-Key draft has it (Stripe's `idempotency_key_in_use`).
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
  private readonly inProgress = new Set<string>();

  /**
   * Runs `write` once per key; later calls with the key get the first reply
   * again. The key is held `req.writeHoldMs` before the write (the `writeHoldMs` fault).
   */
  async once(req: UpstreamRequest, write: () => Reply | Promise<Reply>): Promise<Reply> {
    const key = idempotencyKeyOf(req.headers);
    if (key === undefined || key === '') return write();
    if (this.inProgress.has(key)) {
      return { status: 409, body: { error: 'idempotency_key_in_use', message: 'A request with this Idempotency-Key is still being processed.' } };
    }
    const fingerprint = JSON.stringify(req.body ?? null);
    const now = Date.now();
    const stored = this.entries.get(key);
    if (stored && stored.expiresAt > now) {
      if (stored.fingerprint !== fingerprint) {
        return { status: 422, body: { error: 'idempotency_key_reused', message: 'This Idempotency-Key was used with a different body.' } };
      }
      return { status: stored.status, rawBody: stored.rawBody, headers: { 'idempotent-replayed': 'true' } };
    }
    this.inProgress.add(key);
    try {
      if (req.writeHoldMs > 0) await sleep(req.writeHoldMs);
      const reply = await write();
      // Only successful writes are kept: a failed one did not happen, so a retry must be allowed to.
      if (reply.status < 300) {
        const rawBody = reply.rawBody ?? JSON.stringify(reply.body ?? null);
        this.entries.set(key, { fingerprint, status: reply.status, rawBody, expiresAt: now + TTL_MS });
        return { status: reply.status, rawBody, ...(reply.headers ? { headers: reply.headers } : {}) };
      }
      return reply;
    } finally {
      this.inProgress.delete(key);
    }
  }
}

export function idempotencyKeyOf(headers: Record<string, string | string[] | undefined>): string | undefined {
  const value = headers['idempotency-key'];
  return Array.isArray(value) ? value[0] : value;
}
