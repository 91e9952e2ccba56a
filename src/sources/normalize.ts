import { z } from 'zod';

/**
 * Zod pieces that turn vendor dialects into the schema's: every timestamp ends
 * as an ISO 8601 UTC string. A value that does not parse fails validation
 * (SOURCE_BAD_RESPONSE); unknown object fields are stripped, never rejected.
 */
function iso(ms: number, ctx: z.RefinementCtx, what: string): string {
  const known = isoCache.get(ms);
  if (known !== undefined) return known;
  const date = new Date(ms);
  if (Number.isNaN(date.getTime())) {
    ctx.addIssue({ code: 'custom', message: `not a valid ${what}` });
    return z.NEVER;
  }
  const text = date.toISOString();
  if (isoCache.size >= ISO_CACHE_MAX) isoCache.clear();
  isoCache.set(ms, text);
  return text;
}

/**
 * Metrics series share their bucket timestamps across users (50 users × 30
 * days is 1,500 conversions of 30 distinct instants): formatting each once was
 * 11 % of an uncached 50-user list's CPU.
 */
const isoCache = new Map<number, string>();
const ISO_CACHE_MAX = 10_000;

/** ISO 8601 strings, and RFC 7231 HTTP-dates ("Tue, 02 Jan 2024 03:04:05 GMT"). */
export const isoFromDateString = z.string().transform((s, ctx) => iso(Date.parse(s), ctx, 'date'));
export const isoFromUnixSeconds = z.number().transform((s, ctx) => iso(s * 1000, ctx, 'Unix timestamp (s)'));
export const isoFromUnixMs = z.number().transform((ms, ctx) => iso(ms, ctx, 'Unix timestamp (ms)'));

export const count = z.number().int().nonnegative();

/** `count` as a plain predicate, for large arrays checked in one loop rather than with a schema per element. */
export const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
/** Unix seconds Date can represent, as a plain predicate like `isCount`. */
export const isUnixSeconds = (v: unknown): v is number => typeof v === 'number' && v >= -8.64e12 && v <= 8.64e12;
/** The ISO string of a value `isUnixSeconds` accepted; memoized like the rest. */
export function isoOfUnixSeconds(seconds: number): string {
  const ms = seconds * 1000;
  let text = isoCache.get(ms);
  if (text === undefined) {
    text = new Date(ms).toISOString();
    if (isoCache.size >= ISO_CACHE_MAX) isoCache.clear();
    isoCache.set(ms, text);
  }
  return text;
}
