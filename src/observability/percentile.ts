/** The nearest-rank percentile `q` (0–1) of already sorted values, to a tenth; null when there are none. */
export function percentileOfSorted(sorted: ArrayLike<number>, q: number): number | null {
  if (sorted.length === 0) return null;
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! * 10) / 10;
}
