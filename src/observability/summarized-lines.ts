/**
 * A log line budget per key (a source, a kind of failure) and what it is
 * about (a source, a target; none when the key says it all): the first
 * `perInterval` lines of an interval are written in full, the rest are counted
 * by code and handed to `summarize` when the interval ends, as one line. What
 * fails for every request or every delivery then says so without burying the log.
 */
export class SummarizedLines<K extends string> {
  private readonly windows = new Map<string, { key: K; about: string; lines: number; suppressed: number; codes: Map<string, number> }>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly summarize: (key: K, suppressed: number, codes: Map<string, number>, about: string) => void,
    private readonly perInterval = 5,
    readonly intervalMs = 10_000,
  ) {
    this.timer = setInterval(() => this.flush(), intervalMs);
    this.timer.unref();
  }

  /** Whether this line is written in full; else it is counted for the summary. */
  admit(key: K, code: string | undefined, about = ''): boolean {
    const id = about === '' ? key : `${key}\u0000${about}`;
    let window = this.windows.get(id);
    if (!window) this.windows.set(id, (window = { key, about, lines: 0, suppressed: 0, codes: new Map() }));
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
    for (const window of this.windows.values()) if (window.suppressed > 0) this.summarize(window.key, window.suppressed, window.codes, window.about);
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
