import { z } from 'zod';
import { readsAs } from './drift.js';
import { parseVendorDate } from './vendor-dates.js';

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

/** toISOString's own form (UTC, milliseconds), with a real date and time of day. */
const CANONICAL_ISO = /^(\d{4})-(\d{2})-(\d{2})T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{3}Z$/;
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * A string already in the form toISOString gives, naming a day that exists:
 * what it would give back is the string itself. Most vendors' ISO timestamps
 * are; formatting each again was two Date objects per timestamp, unshared
 * (a profile's own time), a fifth of reading a user.
 */
function isCanonicalIso(s: string): boolean {
  const m = CANONICAL_ISO.exec(s);
  if (!m) return false;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  if (month < 1 || month > 12 || day < 1) return false;
  const leap = month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return day <= DAYS_IN_MONTH[month - 1]! + (leap ? 1 : 0);
}

/** ISO 8601 strings, and RFC 7231 HTTP-dates ("Tue, 02 Jan 2024 03:04:05 GMT"), any of their forms; UTC when they name no offset. */
export const isoFromDateString = z.string().transform((s, ctx) => (isCanonicalIso(s) ? s : iso(parseVendorDate(s), ctx, 'date')));
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

/** Each lenient field's strict form: the same without its `.catch` (see lenientObject). */
const strictForms = new WeakMap<z.ZodType, z.ZodType>();

/** An optional field: absent or null is null; a value of the wrong type is null too, and noticed. */
export function optional<T extends z.ZodType>(schema: T) {
  const strict = schema.nullish();
  const lenient = strict.catch(() => {
    forgivenCount++;
    return null;
  });
  strictForms.set(lenient, strict);
  return lenient;
}

/**
 * How readableItems reads an item whose schema lenientObject (or
 * lenientObjectAs) made: its strict parse and its mapping called directly,
 * without zod's transform and pipe layers around them, which on a cold list
 * allocated about as much again as the parse itself (bench/RESULTS.md, session
 * 13). Undefined when the strict parse fails: the item's own schema then reads
 * it as written, forgiving or reporting what it must.
 */
const quickReaders = new WeakMap<z.ZodType, (raw: unknown) => { data: unknown } | undefined>();

/**
 * `z.object(fields)` read twice as fast: first with every `optional()` field
 * in its strict form (no `.catch`, which keeps zod off its compiled path for
 * objects: 9 µs a user against 1), and only when that fails — a field of the
 * wrong type — again as written, which nulls that field and counts it. The
 * output is the same either way: a `.catch` changes nothing when its field
 * reads. Drift is walked against the object as written.
 */
export function lenientObject<F extends Record<string, z.ZodType>>(fields: F) {
  const lenient = z.object(fields);
  const strict = z.object(Object.fromEntries(Object.entries(fields).map(([name, field]) => [name, strictForms.get(field) ?? field])));
  const readStrictly = (raw: unknown) => {
    const quick = strict.safeParse(raw);
    return quick.success ? quick : undefined;
  };
  const fast = z.unknown().transform((raw, ctx): z.output<typeof lenient> => {
    const quick = readStrictly(raw);
    if (quick) return quick.data as z.output<typeof lenient>;
    const slow = lenient.safeParse(raw);
    if (slow.success) return slow.data;
    for (const issue of slow.error.issues) ctx.addIssue({ ...issue, code: 'custom', message: issue.message, path: issue.path });
    return z.NEVER;
  });
  const schema = readsAs(fast, lenient);
  quickReaders.set(schema, readStrictly);
  return schema;
}

/** `lenientObject(fields).transform(map)`, which readableItems also reads without zod's layers (see quickReaders). */
export function lenientObjectAs<F extends Record<string, z.ZodType>, T>(fields: F, map: (read: z.output<ReturnType<typeof lenientObject<F>>>) => T) {
  const object = lenientObject(fields);
  const schema = object.transform((read) => map(read));
  const quick = quickReaders.get(object)!;
  quickReaders.set(schema, (raw) => {
    const read = quick(raw);
    return read && { data: map(read.data as z.output<typeof object>) };
  });
  return schema;
}

/** Where and why the first unreadable item failed: issue paths and messages, never values. */
function describeIssue(at: string, error: z.ZodError): string {
  const issue = error.issues[0];
  return issue ? `${[at, ...issue.path.map(String)].join('.')}: ${issue.message}` : at;
}

/** An array whose items are read one by one: an item that does not read is left out and counted, the rest kept. */
export function readableItems<T extends z.ZodType>(item: T) {
  const quick = quickReaders.get(item);
  const lenient = z.array(z.unknown()).transform((raw) => {
    const items: z.output<T>[] = [];
    let unreadable = 0;
    let problem: string | undefined;
    for (let i = 0; i < raw.length; i++) {
      const read = quick?.(raw[i]);
      if (read) {
        items.push(read.data as z.output<T>);
        continue;
      }
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
