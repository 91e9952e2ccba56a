import { headerValue, type HeaderMap } from './header-value.js';
import { parseVendorDate } from './vendor-dates.js';

/**
 * What a vendor's rate-limit headers say, in the dialects UPSTREAMS.md names
 * and the common others: `Retry-After` as delta-seconds or an HTTP-date (RFC
 * 9110 §10.2.3); `X-RateLimit-Remaining` / `-Reset` (identity sends the reset
 * as Unix seconds; others send delta seconds or Unix ms, told apart by size);
 * the IETF draft's `RateLimit-Remaining` / `RateLimit-Reset` and its
 * structured `RateLimit: "default";r=0;t=5` (or `remaining=0, reset=5`).
 */
type Headers = HeaderMap;

/** A pause longer than this is not believed (a broken header must not black a vendor out for a day). */
export const MAX_PAUSE_MS = 5 * 60_000;

/** A header's value trimmed, or undefined when absent or blank. */
function first(headers: Headers, name: string): string | undefined {
  return headerValue(headers, name)?.trim() || undefined;
}

/** Past this, a vendor's Date header is believed over our clock: Date counts whole seconds, and the answer took time to come. */
const CLOCK_SKEW_TOLERANCE_MS = 2_000;

/**
 * "Now" on the vendor's clock, for the instants its headers name (a reset in
 * Unix seconds, a Retry-After date): ours, unless its Date header (RFC 9110
 * §6.6.1) is further off than a whole second and the answer's way here
 * explain. Read on our clock, a vendor a minute ahead names resets a minute
 * away (a pause past every deadline), and one a minute behind resets already
 * gone (no pause: the refused calls are sent again at once).
 */
export function vendorNow(headers: Headers, localNow = Date.now()): number {
  const date = first(headers, 'date');
  const at = date === undefined ? NaN : parseVendorDate(date);
  if (Number.isNaN(at)) return localNow;
  // Date drops the milliseconds: the vendor's instant is half a second past it on average.
  const vendor = at + 500;
  return Math.abs(vendor - localNow) > CLOCK_SKEW_TOLERANCE_MS ? vendor : localNow;
}

/** A reset value: delta seconds, Unix seconds or Unix ms, as milliseconds from now (the vendor's, when not given). */
function resetInMs(value: string | undefined, headers: Headers, nowMs: number | undefined): number | undefined {
  if (value === undefined || !/^\d+(\.\d+)?$/.test(value)) return undefined;
  const n = Number(value);
  if (n > 1e12) return n - (nowMs ?? vendorNow(headers));
  if (n > 1e9) return n * 1000 - (nowMs ?? vendorNow(headers));
  return n * 1000;
}

/** The IETF `RateLimit` field's remaining (r / remaining) and reset (t / reset), in either draft's syntax. */
function structured(headers: Headers): { remaining?: number; reset?: string } {
  const field = first(headers, 'ratelimit');
  if (!field) return {};
  const param = (names: string[]) => {
    for (const name of names) {
      const match = new RegExp(`(?:^|[;,\\s])${name}=(\\d+)`).exec(field);
      if (match) return match[1];
    }
    return undefined;
  };
  const remaining = param(['r', 'remaining']);
  const reset = param(['t', 'reset']);
  return { ...(remaining === undefined ? {} : { remaining: Number(remaining) }), ...(reset === undefined ? {} : { reset }) };
}

const clamp = (ms: number) => Math.min(MAX_PAUSE_MS, Math.max(0, Math.ceil(ms)));

/** How long the vendor asked us to wait, in ms; undefined when it says nothing usable. `nowMs`: the vendor's now (vendorNow). */
export function retryAfterMs(headers: Headers, nowMs?: number): number | undefined {
  const retryAfter = first(headers, 'retry-after');
  if (retryAfter) {
    // RFC 9110 has whole seconds; some vendors send a fraction ("2.0", "0.5"), which means what it says.
    if (/^\d+(\.\d+)?$/.test(retryAfter)) return clamp(Number(retryAfter) * 1000);
    const at = parseVendorDate(retryAfter);
    if (!Number.isNaN(at)) return clamp(at - (nowMs ?? vendorNow(headers)));
  }
  const reset = resetInMs(first(headers, 'x-ratelimit-reset') ?? first(headers, 'ratelimit-reset') ?? structured(headers).reset, headers, nowMs);
  return reset === undefined ? undefined : clamp(reset);
}

/** The same, in whole seconds (what `extensions.retryAfterSeconds` carries). */
export function retryAfterSeconds(headers: Headers, nowMs?: number): number | undefined {
  const ms = retryAfterMs(headers, nowMs);
  return ms === undefined ? undefined : Math.ceil(ms / 1000);
}

/** Calls left before the vendor's window resets, and when it does; undefined when it does not say. */
export function remainingWindow(headers: Headers, nowMs?: number): { remaining: number; resetInMs: number } | undefined {
  const s = structured(headers);
  const remainingText = first(headers, 'x-ratelimit-remaining') ?? first(headers, 'ratelimit-remaining');
  const remaining = remainingText !== undefined && /^\d+$/.test(remainingText) ? Number(remainingText) : s.remaining;
  if (remaining === undefined) return undefined;
  const reset = resetInMs(first(headers, 'x-ratelimit-reset') ?? first(headers, 'ratelimit-reset') ?? s.reset, headers, nowMs);
  if (reset === undefined) return undefined;
  return { remaining, resetInMs: clamp(reset) };
}
