/**
 * Progress for the long commands a person waits on: a line per step that
 * counts down while it runs (rewritten in place on a terminal, once at the
 * start and once at the end otherwise, so CI logs stay short), and a short
 * table at the end.
 */
const tty = process.stdout.isTTY === true;

/** Runs `work`, showing `label` with the elapsed and expected time until it settles. */
export async function step<T>(label: string, expectedSeconds: number, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  const line = () => {
    const elapsed = (Date.now() - started) / 1000;
    const share = expectedSeconds > 0 ? Math.min(1, elapsed / expectedSeconds) : 0;
    const bar = '█'.repeat(Math.round(share * 20)).padEnd(20, '░');
    return `${label} ${bar} ${elapsed.toFixed(0)}/${expectedSeconds.toFixed(0)} s`;
  };
  if (tty) process.stdout.write(line());
  else console.log(`${label} (about ${expectedSeconds.toFixed(0)} s)…`);
  const timer = tty ? setInterval(() => process.stdout.write(`\r${line()}`), 500) : undefined;
  try {
    return await work();
  } finally {
    clearInterval(timer);
    const took = `${label}: done in ${((Date.now() - started) / 1000).toFixed(1)} s`;
    if (tty) process.stdout.write(`\r\x1b[2K${took}\n`);
    else console.log(took);
  }
}

/** A small aligned table (what a person reads at the end; RESULTS.md gets the full one). */
export function shortTable(rows: Record<string, string | number>[]): string {
  if (rows.length === 0) return '';
  const cols = Object.keys(rows[0]!);
  const cells = rows.map((r) => cols.map((c) => String(r[c] ?? '')));
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const fmt = (values: string[]) => values.map((v, i) => (i === 0 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join('  ');
  return [fmt(cols), fmt(widths.map((w) => '─'.repeat(w))), ...cells.map(fmt)].join('\n');
}
