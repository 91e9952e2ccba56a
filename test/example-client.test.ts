import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { stackPool } from './helpers/stack.js';

/**
 * The typed client in examples/ (codegen documents sent with urql's core),
 * run as a user runs it against the real server: the dashboard, then the
 * deferred dashboard read part by part. `npm test` type-checks it too, so a
 * schema change that breaks it fails CI.
 */
const stackWith = stackPool();

it('examples/client.ts reads the deferred dashboard in two parts: profile at once, metrics when analytics answers', async () => {
  const stack = await stackWith();
  await stack.faults('analytics', { latencyMs: 600 });
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'examples/client.ts', stack.url, await stack.token(), stack.userId(90)], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  const parts = [...stdout.matchAll(/deferred dashboard part after (\d+) ms: (.*)/g)].map((m) => ({ ms: Number(m[1]), text: m[2]! }));
  expect(stdout).toMatch(/^dashboard: .+ · \d+ page views · \d+ unread$/m);
  expect(parts).toHaveLength(2);
  expect(parts[0]!.text).toMatch(/· \d+ unread · metrics to follow$/);
  expect(parts[0]!.ms).toBeLessThan(300);
  expect(parts[1]!.text).toMatch(/· \d+ page views$/);
  expect(parts[1]!.ms).toBeGreaterThanOrEqual(500);
});
