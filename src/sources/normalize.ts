import { z } from 'zod';
import { readsAs } from './drift.js';

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

/**
 * Reading leniently (UPSTREAMS.md: unknown fields are ignored, never
 * rejected; a mistyped optional field nulls that field only). Each helper that
 * forgives something counts it here, and HttpSource compares the count before
 * and after a parse (zod parses synchronously) to walk that response in full
 * for drift instead of waiting for the next sample.
 */
let forgivenCount = 0;
export const forgivenSoFar = (): number => forgivenCount;

/** An optional field: absent or null is null; a value of the wrong type is null too, and noticed. */
export function optional<T extends z.ZodType>(schema: T) {
  return schema.nullish().catch(() => {
    forgivenCount++;
    return null;
  });
}

/** Where and why the first unreadable item failed: issue paths and messages, never values. */
function describeIssue(at: string, error: z.ZodError): string {
  const issue = error.issues[0];
  return issue ? `${[at, ...issue.path.map(String)].join('.')}: ${issue.message}` : at;
}

/** An array whose items are read one by one: an item that does not read is left out and counted, the rest kept. */
export function readableItems<T extends z.ZodType>(item: T) {
  const lenient = z.array(z.unknown()).transform((raw) => {
    const items: z.output<T>[] = [];
    let unreadable = 0;
    let problem: string | undefined;
    for (let i = 0; i < raw.length; i++) {
      const parsed = item.safeParse(raw[i]);
      if (parsed.success) items.push(parsed.data);
      else {
        unreadable++;
        problem ??= describeIssue(String(i), parsed.error);
      }
    }
    if (unreadable > 0) forgivenCount++;
    return { items, unreadable, problem };
  });
  return readsAs(lenient, z.array(item));
}

/** A map keyed by id whose entries are read one by one: an entry that does not read is left out, its key kept in `unreadable`. */
export function readableEntries<T extends z.ZodType>(value: T) {
  const lenient = z.record(z.string(), z.unknown()).transform((raw) => {
    const entries = new Map<string, z.output<T>>();
    const unreadable = new Map<string, string>();
    for (const key in raw) {
      const parsed = value.safeParse(raw[key]);
      if (parsed.success) entries.set(key, parsed.data);
      else unreadable.set(key, describeIssue('*', parsed.error));
    }
    if (unreadable.size > 0) forgivenCount++;
    return { entries, unreadable };
  });
  return readsAs(lenient, z.record(z.string(), value));
}
