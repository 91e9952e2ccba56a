import { z } from 'zod';

/**
 * Zod pieces that turn vendor dialects into the schema's: every timestamp ends
 * as an ISO 8601 UTC string. A value that does not parse fails validation
 * (SOURCE_BAD_RESPONSE); unknown object fields are stripped, never rejected.
 */
function iso(ms: number, ctx: z.RefinementCtx, what: string): string {
  const date = new Date(ms);
  if (Number.isNaN(date.getTime())) {
    ctx.addIssue({ code: 'custom', message: `not a valid ${what}` });
    return z.NEVER;
  }
  return date.toISOString();
}

/** ISO 8601 strings, and RFC 7231 HTTP-dates ("Tue, 02 Jan 2024 03:04:05 GMT"). */
export const isoFromDateString = z.string().transform((s, ctx) => iso(Date.parse(s), ctx, 'date'));
export const isoFromUnixSeconds = z.number().transform((s, ctx) => iso(s * 1000, ctx, 'Unix timestamp (s)'));
export const isoFromUnixMs = z.number().transform((ms, ctx) => iso(ms, ctx, 'Unix timestamp (ms)'));

export const count = z.number().int().nonnegative();
