/**
 * How long an upstream asked us to wait, in whole seconds, from the dialects
 * UPSTREAMS.md names: `Retry-After` as delta-seconds or as an HTTP-date
 * (RFC 9110 §10.2.3), and identity's `x-ratelimit-reset` in Unix seconds.
 * Undefined when the response says nothing usable.
 */
type Headers = Record<string, string | string[] | undefined>;

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

export function retryAfterSeconds(headers: Headers, nowMs = Date.now()): number | undefined {
  const retryAfter = first(headers['retry-after'])?.trim();
  if (retryAfter) {
    if (/^\d+$/.test(retryAfter)) return Number(retryAfter);
    const at = Date.parse(retryAfter);
    if (!Number.isNaN(at)) return Math.max(0, Math.ceil((at - nowMs) / 1000));
  }
  const reset = first(headers['x-ratelimit-reset'])?.trim();
  if (reset && /^\d+$/.test(reset)) return Math.max(0, Math.ceil(Number(reset) - nowMs / 1000));
  return undefined;
}
