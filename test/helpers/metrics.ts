/** The Prometheus text a server's `/metrics` answers (`url`: its `/graphql`). */
export async function metricsOf(stack: { url: string }): Promise<string> {
  return (await fetch(stack.url.replace('/graphql', '/metrics'))).text();
}

/** One series' value in Prometheus text (its name and labels exactly as written), 0 when absent. */
export function seriesValue(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

/** One series' value as the server reports it now. */
export async function metric(stack: { url: string }, series: string): Promise<number> {
  return seriesValue(await metricsOf(stack), series);
}
