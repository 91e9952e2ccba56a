/** A response's or request's headers, as Node and undici give them: a header sent more than once is an array. */
export type HeaderMap = Record<string, string | string[] | undefined>;

/** A list-valued header (Link) as one string: its values joined, as RFC 9110 §5.3 reads one sent more than once. */
export function headerList(headers: HeaderMap, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** A header's value as one string: the first, when it came more than once. */
export function headerValue(headers: HeaderMap, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * A header that holds one value (a count): sent more than once with the same value (a proxy or a framework adding its
 * own copy), that value; with different values, all of them joined, which no reader takes for one.
 */
export function headerSingle(headers: HeaderMap, name: string): string | undefined {
  const value = headers[name];
  if (!Array.isArray(value)) return value;
  const distinct = new Set(value.map((v) => v.trim()));
  return distinct.size === 1 ? value[0] : value.join(', ');
}
