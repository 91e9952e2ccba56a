/**
 * A vendor's date text as epoch milliseconds (NaN when it is not a date),
 * never read in the server's own time zone. RFC 9110 §5.6.7 has recipients
 * accept three HTTP-date forms, all GMT; `Date.parse` reads the asctime one
 * ("Sun Nov  6 08:49:37 1994") as local time, and an ISO 8601 date-time
 * without an offset too, so on a host with TZ set the same answer would give
 * another instant. Both are read as UTC here.
 */
const ASCTIME = /^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/;
const ISO_WITHOUT_OFFSET = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)$/;

export function parseVendorDate(text: string): number {
  const s = text.trim();
  if (ASCTIME.test(s)) return Date.parse(`${s} GMT`);
  const local = ISO_WITHOUT_OFFSET.exec(s);
  if (local) return Date.parse(`${local[1]}T${local[2]}Z`);
  return Date.parse(s);
}
