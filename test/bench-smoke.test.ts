import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

/**
 * The benchmark harness still runs end to end (a 2 s smoke, not a measurement:
 * `npm run bench` measures). Our server from source, no baselines, no warm-up.
 */
const run = promisify(execFile);

interface Row {
  scenario: string;
  gateway: string;
  'req/s': number;
  requests: number;
  'upstream calls/query': number;
  'first-time requests': number;
  'non-2xx or errors': number;
}

describe('npm run bench (smoke)', () => {
  it('runs two scenarios for 2 s each, counts upstream calls and sees no errors', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-smoke-'));
    const json = join(dir, 'rows.json');
    const chart = join(dir, 'chart.svg');
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'bench/run.ts'], {
      env: {
        ...process.env,
        BENCH_DURATION: '2',
        BENCH_WARMUP: '0',
        BENCH_CONNECTIONS: '10',
        BENCH_SCENARIOS: 'dashboard-hot,list-50',
        BENCH_BASELINES: '',
        BENCH_GATEWAY: 'src/main.ts',
        BENCH_JSON: json,
        BENCH_CHART: chart,
      },
      timeout: 90_000,
      maxBuffer: 10 * 1024 * 1024,
    });
    const rows = JSON.parse(readFileSync(json, 'utf8')) as Row[];
    expect(rows.map((r) => [r.scenario, r.gateway])).toEqual([
      ['dashboard-hot', 'ours (l1)'],
      ['list-50', 'ours (l1)'],
    ]);
    for (const row of rows) {
      expect(row['req/s']).toBeGreaterThan(0);
      expect(row['non-2xx or errors']).toBe(0);
    }
    // Read off the upstreams' stats: the hot dashboards' 20 users fetched once each (4 calls) over the run,
    // and a 50-user list never more than 3 calls.
    const [hot, list] = rows as [Row, Row];
    expect(hot['upstream calls/query']).toBeGreaterThan(0);
    expect(hot['upstream calls/query']).toBeLessThan(1);
    expect(list['upstream calls/query']).toBeGreaterThan(0);
    expect(list['upstream calls/query']).toBeLessThanOrEqual(3);
    // A request is first-time until a response has carried its user: the hot set has 20 users, and each of the
    // 10 connections waits for its answer before it sends again, so at most one first-time request per user each.
    expect(hot['first-time requests']).toBeGreaterThan(0);
    expect(hot['first-time requests']).toBeLessThanOrEqual(20 * 10);
    expect(hot['first-time requests']).toBeLessThan(hot.requests);
    // What a person watching sees: each step's progress, a short table at the end, and the chart beside it.
    expect(stdout).toMatch(/ours \(l1\): dashboard-hot: done in \d+\.\d s/);
    expect(stdout).toMatch(/^gateway\s+scenario\s+req\/s\s+p50 ms\s+p99 ms\s+CPU ms\/q/m);
    const svg = readFileSync(chart, 'utf8');
    expect(svg).toMatch(/^<svg/);
    expect(svg).toContain('>dashboard-hot<');
    expect(svg).toContain('>list-50<');
  }, 120_000);
});
