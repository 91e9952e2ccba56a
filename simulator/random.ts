/** Deterministic numbers for the seeded dataset: the same seed gives the same data on every machine. */

/** A 32-bit integer hash of a few integers (a murmur3-style finalizer over each). */
export function hash32(...values: number[]): number {
  let h = 0x9e3779b9;
  for (const value of values) {
    let k = Math.imul(value | 0, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
    // Values above 2^32 (millisecond timestamps) contribute their high part too.
    h ^= Math.floor(value / 0x1_0000_0000) | 0;
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A float in [0, 1) from the same inputs. */
export function unit(...values: number[]): number {
  return hash32(...values) / 0x1_0000_0000;
}

export function pick<T>(items: readonly T[], ...values: number[]): T {
  return items[hash32(...values) % items.length]!;
}

export function hex(length: number, ...values: number[]): string {
  let out = '';
  for (let i = 0; out.length < length; i++)
    out += hash32(...values, i)
      .toString(16)
      .padStart(8, '0');
  return out.slice(0, length);
}
