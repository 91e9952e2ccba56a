import { z } from 'zod';
import { readsAs, readsAsUnit } from './drift.js';
import { parseVendorDate } from './vendor-dates.js';
import { isJsonObject, quickReaderOf, setQuickReader, UNREAD } from './quick-read.js';

/**
 * Zod pieces that turn vendor dialects into the schema's: every timestamp ends
 * as an ISO 8601 UTC string. A value that does not parse fails validation
 * (SOURCE_BAD_RESPONSE); unknown object fields are stripped, never rejected.
 */
function iso(ms: number, ctx: z.RefinementCtx, what: string): string {
  // Not memoized like a series' instants (isoOfUnixSeconds): a user's own times (last active, created, sent) are
  // nearly all distinct, and kept they only pushed the shared ones out of the memo.
  const date = new Date(ms);
  if (Number.isNaN(date.getTime())) {
    ctx.addIssue({ code: 'custom', message: `not a valid ${what}` });
    return z.NEVER;
  }
  return date.toISOString();
}

/**
 * Metrics series share their bucket timestamps across users (50 users × 30
 * days is 1,500 conversions of 30 distinct instants): formatting each once was
 * 11 % of an uncached 50-user list's CPU.
 */
const isoCache = new Map<number, string>();
const ISO_CACHE_MAX = 10_000;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** The number the digits at s[from, from + n) spell, or -1 when one of them is not a digit. */
function digitsAt(s: string, from: number, n: number): number {
  let value = 0;
  for (let i = from; i < from + n; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    value = value * 10 + d;
  }
  return value;
}

/**
 * A string already in the form toISOString gives (`YYYY-MM-DDTHH:mm:ss.sssZ`,
 * UTC, naming a day that exists): what it would give back is the string
 * itself. Most vendors' ISO timestamps are; formatting each again was two Date
 * objects per timestamp, unshared (a profile's own time), a fifth of reading a
 * user. Read by character codes: a regular expression's match was 1.6 % of a
 * cold list's bytes (bench/RESULTS.md, session 30).
 */
function isCanonicalIso(s: string): boolean {
  if (s.length !== 24 || s[4] !== '-' || s[7] !== '-' || s[10] !== 'T' || s[13] !== ':' || s[16] !== ':' || s[19] !== '.' || s[23] !== 'Z') return false;
  const year = digitsAt(s, 0, 4);
  const month = digitsAt(s, 5, 2);
  const day = digitsAt(s, 8, 2);
  const hour = digitsAt(s, 11, 2);
  const minute = digitsAt(s, 14, 2);
  const second = digitsAt(s, 17, 2);
  if (year < 0 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59 || digitsAt(s, 20, 3) < 0) return false;
  if (month < 1 || month > 12 || day < 1) return false;
  const leap = month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return day <= DAYS_IN_MONTH[month - 1]! + (leap ? 1 : 0);
}

/** ISO 8601 strings, and RFC 7231 HTTP-dates ("Tue, 02 Jan 2024 03:04:05 GMT"), any of their forms; UTC when they name no offset. */
export const isoFromDateString = z.string().transform((s, ctx) => (isCanonicalIso(s) ? s : iso(parseVendorDate(s), ctx, 'date')));
/**
 * Where Unix seconds end and Unix milliseconds begin: 10^11 seconds is the year
 * 5138, and 10^11 ms is March 1973. A vendor that changes a timestamp's unit
 * (seconds to ms is the usual one) sends the same JSON type, so only the size
 * tells: read in the wrong unit it was a date in the year 56,000, or in
 * January 1970, served as if true.
 */
export const UNIX_UNIT_BOUNDARY = 1e11;
/** Unix seconds that are not some other unit: 0 up to the boundary. */
export const isPlausibleUnixSeconds = (v: number): boolean => v >= 0 && v < UNIX_UNIT_BOUNDARY;
/** Unix ms that are not seconds (nor µs): from the boundary up to 10^14 (the year 5138). */
export const isPlausibleUnixMs = (v: number): boolean => v >= UNIX_UNIT_BOUNDARY && v < UNIX_UNIT_BOUNDARY * 1000;

export const isoFromUnixSeconds = readsAsUnit(
  z.number().transform((s, ctx) => {
    if (isPlausibleUnixSeconds(s)) return iso(s * 1000, ctx, 'Unix timestamp (s)');
    ctx.addIssue({ code: 'custom', message: `expected Unix seconds${s >= UNIX_UNIT_BOUNDARY ? ' (this looks like milliseconds)' : ''}` });
    return z.NEVER;
  }),
  'Unix seconds',
  isPlausibleUnixSeconds,
);
export const isoFromUnixMs = readsAsUnit(
  z.number().transform((ms, ctx) => {
    if (isPlausibleUnixMs(ms)) return iso(ms, ctx, 'Unix timestamp (ms)');
    ctx.addIssue({ code: 'custom', message: `expected Unix milliseconds${ms >= 0 && ms < UNIX_UNIT_BOUNDARY ? ' (this looks like seconds)' : ''}` });
    return z.NEVER;
  }),
  'Unix milliseconds',
  isPlausibleUnixMs,
);

/**
 * An optional instant, or null where the vendor wrote "never" as a date: Go's
 * zero time (0001-01-01T00:00:00Z, .NET's DateTime.MinValue too) or the Unix
 * epoch (a `last_active` of 0). Served as dates, a user who never logged in
 * had last logged in in the year 1.
 */
export function instantOrNever(iso: string | null | undefined): string | null {
  if (iso === null || iso === undefined) return null;
  return iso.startsWith('0001-01-01T00:00:00') || iso === '1970-01-01T00:00:00.000Z' ? null : iso;
}

/** GraphQL's `Int` is 32-bit: a count past it cannot be served (graphql-js fails the field untyped, on every read of the entry). */
export const MAX_GRAPHQL_INT = 2_147_483_647;

/** A count served as `Int`: one past 2^31 − 1 is an unreadable value, like a retyped one (`SOURCE_BAD_RESPONSE` for its entity, with the field named in the warn line). */
export const count = z.number().int().nonnegative().max(MAX_GRAPHQL_INT);

/** A non-negative integer as a plain predicate (positions and page sizes: any safe integer). */
export const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
/** `count` as a plain predicate, for large arrays checked in one loop rather than with a schema per element. */
export const isIntCount = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= MAX_GRAPHQL_INT;
/** Unix seconds that are not another unit (see UNIX_UNIT_BOUNDARY), as a plain predicate like `isCount`. */
export const isUnixSeconds = (v: unknown): v is number => typeof v === 'number' && isPlausibleUnixSeconds(v);
/** The ISO string of a value `isUnixSeconds` accepted, memoized: a series' instants repeat across users (see isoCache). */
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
 * `z.object(fields)` read twice as fast: first quickly (quick-read.ts) with
 * every `optional()` field in its strict form (no `.catch`), and only when
 * that fails — a field of the wrong type — with zod as written, which nulls
 * that field and counts it. The output is the same either way: a `.catch`
 * changes nothing when its field reads. Drift is walked against the object as
 * written.
 */
export function lenientObject<F extends Record<string, z.ZodType>>(fields: F) {
  const lenient = z.object(fields);
  const strict = z.object(Object.fromEntries(Object.entries(fields).map(([name, field]) => [name, strictForms.get(field) ?? field])));
  const quick =
    quickReaderOf(strict) ??
    ((raw: unknown) => {
      const read = strict.safeParse(raw);
      return read.success ? read.data : UNREAD;
    });
  const fast = z.unknown().transform((raw, ctx): z.output<typeof lenient> => {
    const read = quick(raw);
    if (read !== UNREAD) return read as z.output<typeof lenient>;
    const slow = lenient.safeParse(raw);
    if (slow.success) return slow.data;
    for (const issue of slow.error.issues) ctx.addIssue({ ...issue, code: 'custom', message: issue.message, path: issue.path });
    return z.NEVER;
  });
  const schema = readsAs(fast, lenient);
  // Its quick reader is the strict one: what that refuses, the caller hands to zod, which forgives through `fast`.
  setQuickReader(schema, quick);
  return schema;
}

/** `lenientObject(fields).transform(map)`: a quick reader too (a transform of a quick reader reads quickly). */
export function lenientObjectAs<F extends Record<string, z.ZodType>, T>(fields: F, map: (read: z.output<ReturnType<typeof lenientObject<F>>>) => T) {
  return lenientObject(fields).transform((read) => map(read));
}

/** Where and why the first unreadable item failed: issue paths and messages, never values. */
function describeIssue(at: string, error: z.ZodError): string {
  const issue = error.issues[0];
  return issue ? `${[at, ...issue.path.map(String)].join('.')}: ${issue.message}` : at;
}

/** An array whose items are read one by one: an item that does not read is left out and counted, the rest kept. */
export function readableItems<T extends z.ZodType>(item: T) {
  const quick = quickReaderOf(item);
  const readItems = (raw: unknown[]) => {
    const items: z.output<T>[] = [];
    let unreadable = 0;
    let problem: string | undefined;
    for (let i = 0; i < raw.length; i++) {
      const read = quick ? quick(raw[i]) : UNREAD;
      if (read !== UNREAD) {
        items.push(read as z.output<T>);
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
  };
  const lenient = readsAs(z.array(z.unknown()).transform(readItems), z.array(item));
  setQuickReader(lenient, (raw) => (Array.isArray(raw) ? readItems(raw) : UNREAD));
  return lenient;
}

/** A map keyed by id whose entries are read one by one: an entry that does not read is left out, its key kept in `unreadable`. */
export function readableEntries<T extends z.ZodType>(value: T) {
  const quick = quickReaderOf(value);
  const readEntries = (raw: Record<string, unknown>) => {
    const entries = new Map<string, z.output<T>>();
    const unreadable = new Map<string, string>();
    for (const key in raw) {
      const read = quick ? quick(raw[key]) : UNREAD;
      if (read !== UNREAD) {
        entries.set(key, read as z.output<T>);
        continue;
      }
      const parsed = value.safeParse(raw[key]);
      if (parsed.success) entries.set(key, parsed.data);
      else unreadable.set(key, describeIssue('*', parsed.error));
    }
    if (unreadable.size > 0) forgivenCount++;
    return { entries, unreadable };
  };
  const lenient = readsAs(z.record(z.string(), z.unknown()).transform(readEntries), z.record(z.string(), value));
  setQuickReader(lenient, (raw) => (isJsonObject(raw) ? readEntries(raw) : UNREAD));
  return lenient;
}
