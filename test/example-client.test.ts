import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { stackPool, type Stack } from './helpers/stack.js';

/**
 * The typed client in examples/ (codegen documents sent with urql's core),
 * run as `npm run example` against the real server: the dashboard, the
 * deferred dashboard read part by part, a mutation, a partial result with its
 * typed error handled, and an unknown user. `npm test` type-checks it first,
 * so a schema change that breaks it fails CI.
 */
const stackWith = stackPool();

async function example(stack: Stack, env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)('npm', ['run', '-s', 'example'], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, GRAPHQL_URL: stack.url, GRAPHQL_TOKEN: await stack.token({ sub: stack.userId(90) }), ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('npm run example', () => {
  it('the dashboard, the deferred dashboard in two parts (profile at once, metrics when analytics answers), and a mutation', async () => {
    const stack = await stackWith();
    await stack.faults('analytics', { latencyMs: 600 });
    const { code, stdout, stderr } = await example(stack, {});
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(/^dashboard: .+ · \d+ page views · \d+ unread$/m);
    const parts = [...stdout.matchAll(/deferred dashboard part after (\d+) ms: (.*)/g)].map((m) => ({ ms: Number(m[1]), text: m[2]! }));
    expect(parts).toHaveLength(2);
    expect(parts[0]!.text).toMatch(/· \d+ unread · metrics to follow$/);
    expect(parts[0]!.ms).toBeLessThan(300);
    expect(parts[1]!.text).toMatch(/· \d+ page views$/);
    expect(parts[1]!.ms).toBeGreaterThanOrEqual(500);
    expect(stdout).toMatch(/^sendNotification: COMPLETE · NOTIFICATIONS DELIVERED, AUDIT DELIVERED$/m);
  });

  it('a failing vendor: the rest of the dashboard, and the typed error handled (exit 0)', async () => {
    const stack = await stackWith();
    await stack.faults('analytics', { errorRate: 1, errorStatus: 503 });
    const { code, stdout, stderr } = await example(stack, { SEND_NOTIFICATION: 'false' });
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(/^partial: user\.metrics is null: SOURCE_UNAVAILABLE: analytics is not answering; showing everything else/m);
    expect(stdout).toMatch(/^dashboard: .+ · metrics unavailable · \d+ unread \(1 part\(s\) missing\)$/m);
  });

  it('an unknown user: says where to find a real id, exit 1', async () => {
    const stack = await stackWith();
    const { code, stderr } = await example(stack, { GRAPHQL_USER_ID: 'auth0|nobody', SEND_NOTIFICATION: 'false' });
    expect(code).toBe(1);
    expect(stderr).toMatch(/No user auth0\|nobody\. A real id: /);
  });
});
