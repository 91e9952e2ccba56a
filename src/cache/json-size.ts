/**
 * About how many characters `JSON.stringify(value)` would make, without making
 * them: L1's byte bound for entries that no tier serializes (no L2). On the
 * miss path it is ~7× cheaper than stringifying and allocates nothing; numbers
 * count 8 and keys their length, so it is close to, not equal to, the JSON's
 * length — which is itself only a proxy for what the entry weighs in the heap.
 * For the plain data the normalizers make: no cycles, no toJSON — except an
 * object that says its own length through `JSON_LENGTH` (a compact entity
 * whose JSON is made by its toJSON).
 */
export const JSON_LENGTH = Symbol('approximate JSON length');

export function approximateJsonLength(value: unknown): number {
  switch (typeof value) {
    case 'string':
      return value.length + 2;
    case 'number':
      return 8;
    case 'boolean':
      return 5;
    case 'object': {
      if (value === null) return 4;
      if (JSON_LENGTH in value) return (value as { [JSON_LENGTH]: () => number })[JSON_LENGTH]();
      let n = 2;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) n += approximateJsonLength(value[i]) + 1;
        return n;
      }
      for (const key in value) n += key.length + 4 + approximateJsonLength((value as Record<string, unknown>)[key]);
      return n;
    }
    default:
      return 0;
  }
}
