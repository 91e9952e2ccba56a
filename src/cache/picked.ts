/**
 * `items[indices[0]]`, `items[indices[1]]`, …. A loop where `indices.map((i) => items[i])` would make a closure per
 * call, whose optimized code V8 drops at each full collection, so hot paths compiled it again and again
 * (bench/RESULTS.md, session 36).
 */
export function picked<T>(items: readonly T[], indices: readonly number[]): T[] {
  const out = new Array<T>(indices.length);
  for (let j = 0; j < indices.length; j++) out[j] = items[indices[j]!]!;
  return out;
}
