/**
 * `npx tsx bench/latency-floor.ts [--write]`: what p99 / p50 this machine and
 * load generator can show at all. A server that does nothing but read the
 * request and write a fixed JSON answer the size of a dashboard
 * (bench/baselines/http-floor.mjs: plain node:http, one process) is driven by autocannon
 * as bench/run.ts drives every gateway — closed loop, 10 and 50 connections,
 * latency per response from the same event — and its p50, p99 and their ratio
 * are printed. A gateway's repeat p99 cannot be read finer than this: what is
 * left in it is scheduling on the machine, not the gateway.
 *
 * --write appends the table to bench/RESULTS.md. Loopback only, 2 × 10 s.
 */
import { appendFileSync } from 'node:fs';
import { cpus } from 'node:os';
import autocannon from 'autocannon';
import { ROOT, start } from './harness.js';

const DURATION_S = 10;
const WARMUP_S = 2;
const CONNECTIONS = [10, 50];

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

const server = await start('bench/baselines/http-floor.mjs', { PORT: '0' }, /GraphQL endpoint: (\S+)/);
const url = server.output().match(/GraphQL endpoint: (\S+)/)![1]!;
const request = { method: 'POST' as const, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ user { id } }' }) };

const rows: string[] = [];
await autocannon({ url, connections: 10, duration: WARMUP_S, ...request });
for (const connections of CONNECTIONS) {
  const latencies: number[] = [];
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon({ url, connections, duration: DURATION_S, ...request }, (error, done) => (error ? reject(error) : resolve(done)));
    instance.on('response', (_client, _status, _bytes, ms) => latencies.push(ms));
  });
  latencies.sort((a, b) => a - b);
  const [p50, p99] = [percentile(latencies, 0.5), percentile(latencies, 0.99)];
  rows.push(`| ${connections} | ${Math.round(result.requests.average)} | ${p50.toFixed(2)} | ${p99.toFixed(2)} | ${(p99 / p50).toFixed(1)}× |`);
}
server.child.kill('SIGTERM');

const table = ['| connections | req/s | p50 ms | p99 ms | p99 / p50 |', '|---|---|---|---|---|', ...rows].join('\n');
console.log(table);
if (process.argv.includes('--write')) {
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}`;
  appendFileSync(
    `${ROOT}bench/RESULTS.md`,
    `\n### ${new Date().toISOString().slice(0, 10)} — \`npx tsx bench/latency-floor.ts --write\` (a server that only writes a fixed answer; ${machine})\n\n${table}\n`,
  );
}
