/**
 * The bench's chart (SVG, no dependency): for each scenario, requests a second
 * and p99 latency per gateway, as grouped bars in two panels. Written next to
 * bench/RESULTS.md by `npm run bench`.
 */
export interface ChartRow {
  gateway: string;
  scenario: string;
  reqPerSec: number;
  p99Ms: number;
}

const COLORS = ['#0969da', '#bc4c00', '#1a7f37', '#8250df', '#cf222e', '#59636e'];
const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

export function benchChart(rows: readonly ChartRow[], title: string): string {
  const scenarios = [...new Set(rows.map((r) => r.scenario))];
  const gateways = [...new Set(rows.map((r) => r.gateway))];
  const groupWidth = Math.max(120, gateways.length * 28 + 30);
  const width = 70 + scenarios.length * groupWidth + 20;
  const panelHeight = 180;
  const panel = (top: number, label: string, value: (r: ChartRow) => number, unit: string) => {
    const max = Math.max(1, ...rows.map(value));
    let out = `<text x="10" y="${top - 8}" font-size="13" font-weight="600">${esc(label)}</text>`;
    out += `<line x1="60" y1="${top + panelHeight}" x2="${width - 10}" y2="${top + panelHeight}" stroke="#d1d9e0"/>`;
    out += `<text x="55" y="${top + 10}" font-size="10" text-anchor="end" fill="#59636e">${Math.round(max)}</text>`;
    scenarios.forEach((scenario, si) => {
      const x0 = 70 + si * groupWidth;
      gateways.forEach((gateway, gi) => {
        const row = rows.find((r) => r.scenario === scenario && r.gateway === gateway);
        if (!row) return;
        // Room above the tallest bar for its label, below the panel title.
        const h = (value(row) / max) * (panelHeight - 16);
        const x = x0 + gi * 28;
        out += `<rect x="${x}" y="${(top + panelHeight - h).toFixed(1)}" width="22" height="${h.toFixed(1)}" fill="${COLORS[gi % COLORS.length]}"><title>${esc(`${gateway}, ${scenario}: ${value(row)} ${unit}`)}</title></rect>`;
        out += `<text x="${x + 11}" y="${(top + panelHeight - h - 3).toFixed(1)}" font-size="9" text-anchor="middle">${Math.round(value(row))}</text>`;
      });
      out += `<text x="${x0 + (gateways.length * 28) / 2}" y="${top + panelHeight + 14}" font-size="11" text-anchor="middle">${esc(scenario)}</text>`;
    });
    return out;
  };
  const legend = gateways
    .map((g, i) => `<rect x="${70 + i * 150}" y="34" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/><text x="${88 + i * 150}" y="44" font-size="11">${esc(g)}</text>`)
    .join('');
  const height = 70 + 2 * (panelHeight + 50);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="system-ui, sans-serif" viewBox="0 0 ${width} ${height}">
<rect width="100%" height="100%" fill="#fff"/>
<text x="10" y="20" font-size="14" font-weight="700">${esc(title)}</text>
${legend}
${panel(80, 'Throughput (requests/s, higher is better)', (r) => r.reqPerSec, 'req/s')}
${panel(80 + panelHeight + 50, 'p99 latency (ms, lower is better)', (r) => r.p99Ms, 'ms')}
</svg>
`;
}

/** One point of a sweep (bench/sweep.ts): the swept value and what it cost. */
export interface SweepPoint {
  sweep: string;
  x: number;
  cpuMsPerQuery: number;
  p99Ms: number;
  rssMb: number;
}

/**
 * The sweeps' chart: a column per sweep, a row per measure (CPU ms per query,
 * p99, peak RSS with the 200 MB bound drawn), each a line over the swept
 * values (evenly spaced: they grow by factors).
 */
export function sweepChart(points: readonly SweepPoint[], title: string): string {
  const sweeps = [...new Set(points.map((p) => p.sweep))];
  const measures: { label: string; value: (p: SweepPoint) => number; bound?: number }[] = [
    { label: 'CPU ms per query', value: (p) => p.cpuMsPerQuery },
    { label: 'p99 ms', value: (p) => p.p99Ms },
    { label: 'peak RSS MB (bound 200)', value: (p) => p.rssMb, bound: 200 },
  ];
  const cellWidth = 320;
  const cellHeight = 150;
  const width = 20 + sweeps.length * (cellWidth + 40);
  const height = 50 + measures.length * (cellHeight + 50);
  let out = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`;
  out += `<rect width="100%" height="100%" fill="#fff"/><text x="10" y="20" font-size="14" font-weight="600">${esc(title)}</text>`;
  sweeps.forEach((sweep, si) => {
    const series = points.filter((p) => p.sweep === sweep);
    const left = 50 + si * (cellWidth + 40);
    measures.forEach((measure, mi) => {
      const top = 50 + mi * (cellHeight + 50);
      const max = Math.max(1, measure.bound ?? 0, ...series.map(measure.value)) * 1.1;
      const xAt = (i: number) => left + (series.length === 1 ? cellWidth / 2 : (i * cellWidth) / (series.length - 1));
      const yAt = (v: number) => top + cellHeight - (v / max) * cellHeight;
      out += `<text x="${left}" y="${top - 8}" font-weight="600">${esc(`${measure.label} by ${sweep}`)}</text>`;
      out += `<line x1="${left}" y1="${top + cellHeight}" x2="${left + cellWidth}" y2="${top + cellHeight}" stroke="#d1d9e0"/>`;
      out += `<text x="${left - 4}" y="${top + 10}" text-anchor="end" fill="#59636e">${Math.round(max)}</text>`;
      if (measure.bound !== undefined) {
        out += `<line x1="${left}" y1="${yAt(measure.bound)}" x2="${left + cellWidth}" y2="${yAt(measure.bound)}" stroke="#cf222e" stroke-dasharray="4 3"/>`;
      }
      out += `<polyline fill="none" stroke="${COLORS[mi]}" stroke-width="2" points="${series.map((p, i) => `${xAt(i)},${yAt(measure.value(p))}`).join(' ')}"/>`;
      series.forEach((p, i) => {
        const v = measure.value(p);
        out += `<circle cx="${xAt(i)}" cy="${yAt(v)}" r="3" fill="${COLORS[mi]}"/>`;
        out += `<text x="${xAt(i)}" y="${yAt(v) - 6}" text-anchor="middle">${v < 10 ? v.toFixed(2) : Math.round(v)}</text>`;
        out += `<text x="${xAt(i)}" y="${top + cellHeight + 14}" text-anchor="middle" fill="#59636e">${p.x}</text>`;
      });
    });
  });
  return `${out}</svg>\n`;
}
