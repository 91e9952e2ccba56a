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
  'upstream calls/query': number;
  'first-time requests': number;
  'non-2xx or errors': number;
}

describe('npm run bench (smoke)', () => {
  it('runs two scenarios for 2 s each, counts upstream calls and sees no errors', async () => {
    const json = join(mkdtempSync(join(tmpdir(), 'bench-smoke-')), 'rows.json');
    await run(process.execPath, ['--import', 'tsx', 'bench/run.ts'], {
      env: {
        ...process.env,
        BENCH_DURATION: '2',
        BENCH_WARMUP: '0',
        BENCH_CONNECTIONS: '10',
        BENCH_SCENARIOS: 'dashboard-hot,list-50',
        BENCH_BASELINES: '',
        BENCH_GATEWAY: 'src/main.ts',
        BENCH_JSON: json,
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
    // First-time requests are counted per user, not per request: the hot set has 20 users.
    expect(hot['first-time requests']).toBeGreaterThan(0);
    expect(hot['first-time requests']).toBeLessThanOrEqual(20);
  }, 120_000);
});
