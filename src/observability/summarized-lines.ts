/**
 * A log line budget per key (a source, a kind of failure): the first
 * `perInterval` lines of an interval are written in full, the rest are counted
 * by code and handed to `summarize` when the interval ends, as one line. What
 * fails for every request or every delivery then says so without burying the log.
 */
export class SummarizedLines<K> {
  private readonly windows = new Map<K, { lines: number; suppressed: number; codes: Map<string, number> }>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly summarize: (key: K, suppressed: number, codes: Map<string, number>) => void,
    private readonly perInterval = 5,
    readonly intervalMs = 10_000,
  ) {
    this.timer = setInterval(() => this.flush(), intervalMs);
    this.timer.unref();
  }

  /** Whether this line is written in full; else it is counted for the summary. */
  admit(key: K, code: string | undefined): boolean {
    let window = this.windows.get(key);
    if (!window) this.windows.set(key, (window = { lines: 0, suppressed: 0, codes: new Map() }));
    if (window.lines < this.perInterval) {
      window.lines++;
      return true;
    }
    window.suppressed++;
    const counted = code ?? 'unknown';
    window.codes.set(counted, (window.codes.get(counted) ?? 0) + 1);
    return false;
  }

  /** Hands over the summaries of the interval that ended and starts the next. */
  flush(): void {
    for (const [key, window] of this.windows) if (window.suppressed > 0) this.summarize(key, window.suppressed, window.codes);
    this.windows.clear();
  }

  close(): void {
    clearInterval(this.timer);
    this.flush();
  }
}

/** `SOURCE_UNAVAILABLE 6, SOURCE_TIMEOUT 2`: the codes of a summary line. */
export function codeCounts(codes: Map<string, number>): string {
  return [...codes].map(([code, n]) => `${code} ${n}`).join(', ');
}
