import { createHmac, timingSafeEqual } from 'node:crypto';
import { headerValue, type HeaderMap } from '../sources/header-value.js';

/**
 * Verification of a Standard Webhooks signature (standardwebhooks.com):
 * `webhook-signature` holds one or more space-separated `v1,<base64>`
 * (several during a secret rotation), each an HMAC-SHA256 of
 * `<webhook-id>.<webhook-timestamp>.<raw body>` with the secret's key (the
 * base64 after `whsec_`). Compared in constant time; a timestamp more than
 * `toleranceSec` away from now is refused (a replay).
 */
export type Verdict =
  | { ok: true; id: string; /** In milliseconds or with a fraction: read, and drift. */ timestampUnusual: boolean }
  | { ok: false; status: 400 | 401; cause: RefusalCause; reason: string };
/** What a refusal is counted under when its lines are summed up (the reason may carry figures). */
export type RefusalCause = 'headers missing' | 'timestamp not seconds' | 'timestamp out of tolerance' | 'no signature matches';

const TOLERANCE_SEC = 5 * 60;

export function webhookKey(secret: string): Buffer {
  return Buffer.from(secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret, 'base64');
}

export function verifyWebhook(headers: HeaderMap, body: Buffer, key: Buffer, nowSec = Date.now() / 1000): Verdict {
  const id = headerValue(headers, 'webhook-id');
  const timestamp = headerValue(headers, 'webhook-timestamp');
  const signatures = headerValue(headers, 'webhook-signature');
  if (!id || !timestamp || !signatures || id.length > 256)
    return { ok: false, status: 400, cause: 'headers missing', reason: 'missing webhook-id, webhook-timestamp or webhook-signature' };
  if (!/^(\d{1,13}|\d{1,10}\.\d{1,9})$/.test(timestamp)) return { ok: false, status: 400, cause: 'timestamp not seconds', reason: 'webhook-timestamp is not Unix seconds' };
  // Thirteen digits are Unix milliseconds (a vendor sending Date.now()): seconds have ten until 2286. Seconds with a
  // fraction ("1796683633.517", a vendor sending time.time()) are seconds. Refused, every event of such a vendor was
  // lost after its retries; read as what they are, the tolerance still holds, and the signature covers the digits as
  // sent. The receiver counts either as drift.
  const timestampInMs = timestamp.length === 13;
  const offsetSec = Math.round((timestampInMs ? Number(timestamp) / 1000 : Number(timestamp)) - nowSec);
  const timestampUnusual = timestampInMs || timestamp.includes('.');
  if (Math.abs(offsetSec) > TOLERANCE_SEC) {
    // Says whose clock to look at: a vendor retrying hours-old events, or a clock (theirs or ours) that is off.
    return {
      ok: false,
      status: 400,
      cause: 'timestamp out of tolerance',
      reason: `webhook-timestamp ${Math.abs(offsetSec)} s ${offsetSec < 0 ? 'behind' : 'ahead of'} our clock (tolerance ±${TOLERANCE_SEC} s)`,
    };
  }
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest();
  for (const candidate of signatures.split(' ')) {
    const [version, value] = candidate.split(',', 2);
    if (version !== 'v1' || !value) continue;
    const given = Buffer.from(value, 'base64');
    if (given.length === expected.length && timingSafeEqual(given, expected)) return { ok: true, id, timestampUnusual };
  }
  return { ok: false, status: 401, cause: 'no signature matches', reason: 'no signature matches' };
}
