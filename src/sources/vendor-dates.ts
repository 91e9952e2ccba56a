/**
 * A vendor's date text as epoch milliseconds (NaN when it is not a date),
 * never read in the server's own time zone. Only the forms vendors write are
 * dates: ISO 8601 date-times (RFC 3339 and the looser forms around it) and
 * RFC 9110 §5.6.7's three HTTP-date forms, with RFC 5322's numeric zones.
 * `Date.parse` alone is no check: V8 reads "1.5" as 5 January 2001 and "12" as
 * 1 December 2001, so a `Retry-After: 1.5` was a date long past (no wait at
 * all) and a retyped field a plausible day. It also reads the asctime form
 * ("Sun Nov  6 08:49:37 1994"), a date-time without an offset and a zoneless
 * RFC 5322 date as local time, so on a host with TZ set the same answer would
 * give another instant: all three are read as UTC here.
 */
const ISO = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(Z|[+-]\d{2}:?\d{2})?)?$/;
/**
 * IMF-fixdate ("Tue, 02 Jan 2024 03:04:05 GMT") and RFC 5322's looser kin: day
 * without its weekday or zero, seconds left out, a numeric zone, or one of its
 * obsolete US zones (EST, PDT…), which V8 reads as RFC 5322 means them.
 */
const IMF = /^((?:[A-Z][a-z]{2}, ?)?\d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}(?::\d{2})?)(?: (GMT|UTC?|Z|[ECMP][SD]T|[+-]\d{4}))?$/;
/** RFC 850 ("Tuesday, 02-Jan-24 …"), and the cookie form of it with a four-digit year ("Tue, 02-Jan-2024 …"). */
const RFC850 = /^[A-Z][a-z]+, \d{2}-[A-Z][a-z]{2}-(?:\d{2}|\d{4}) \d{2}:\d{2}:\d{2} GMT$/;
const ASCTIME = /^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/;

export function parseVendorDate(text: string): number {
  const s = text.trim();
  const iso = ISO.exec(s);
  if (iso) return Date.parse(`${iso[1]}T${iso[2] ?? '00:00'}${iso[3] ?? 'Z'}`);
  const imf = IMF.exec(s);
  if (imf) return Date.parse(imf[2] === undefined ? `${imf[1]} GMT` : s);
  if (RFC850.test(s)) return Date.parse(s);
  if (ASCTIME.test(s)) return Date.parse(`${s} GMT`);
  return NaN;
}
