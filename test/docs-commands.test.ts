import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { ROOT } from './helpers/processes.js';
import { stackPool } from './helpers/stack.js';

/**
 * Every shell command the README and docs/ print, run as a reader would paste
 * it, against a running server and its simulated vendors, so an example that
 * breaks (a quote, a comment inside JSON, a wrong path) fails CI. A block
 * fenced ```sh norun opts out: installs, `npm test` itself, long-running
 * servers, benches. `http://127.0.0.1:4000` is this test's server; `$URL`,
 * `$IDENTITY_URL`, `$NOTIFICATIONS_URL`, … its vendors; `$USER_ID` a real user.
 */
const DOCS_WEBHOOK_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const stackWith = stackPool((o) => ({ cache: { enabled: true }, webhookSecrets: { notifications: DOCS_WEBHOOK_SECRET }, ...o }));

interface Block {
  file: string;
  line: number;
  script: string;
}

function shellBlocks(): Block[] {
  const files = [
    'README.md',
    ...readdirSync(`${ROOT}docs`)
      .filter((f) => f.endsWith('.md') && f !== 'configuration.md')
      .map((f) => `docs/${f}`),
  ];
  const blocks: Block[] = [];
  for (const file of files) {
    const lines = readFileSync(`${ROOT}${file}`, 'utf8').split('\n');
    for (let i = 0; i < lines.length; i++) {
      const fence = /^```(sh|bash|shell)(\s+\S+)?\s*$/.exec(lines[i]!);
      if (!fence) continue;
      const end = lines.indexOf('```', i + 1);
      if (fence[2]?.trim() !== 'norun') blocks.push({ file, line: i + 1, script: lines.slice(i + 1, end).join('\n') });
      i = end;
    }
  }
  return blocks;
}

it('every shell block in the README and docs/ runs as printed', async () => {
  const blocks = shellBlocks();
  expect(blocks.map((b) => b.file)).toEqual(expect.arrayContaining(['README.md', 'docs/simulator.md', 'docs/webhooks.md']));
  const stack = await stackWith();
  const base = stack.url.replace(/\/graphql$/, '');
  const { endpoints } = stack.upstreams;
  for (const block of blocks) {
    // curl fails on an HTTP error, as a reader would notice one; `set -e` stops at the first failing line.
    const script = `set -euo pipefail\ncurl() { command curl --silent --show-error --fail-with-body "$@"; }\n${block.script.replaceAll('http://127.0.0.1:4000', base)}`;
    const run = promisify(execFile)('bash', ['-c', script], {
      cwd: ROOT,
      timeout: 30_000,
      encoding: 'utf8',
      env: {
        PATH: process.env.PATH!,
        HOME: process.env.HOME ?? '/tmp',
        URL: endpoints.analytics.url,
        IDENTITY_URL: endpoints.identity.url,
        ANALYTICS_URL: endpoints.analytics.url,
        NOTIFICATIONS_URL: endpoints.notifications.url,
        AUDIT_URL: endpoints.audit.url,
        USER_ID: stack.userId(0),
        AUTH_JWT_SECRET: stack.secret,
      },
    });
    const where = `${block.file}:${block.line}`;
    const { stdout } = await run.catch((e: { stdout: string; stderr: string; code: number }) => {
      throw new Error(`${where} failed (exit ${e.code}):\n${block.script}\n--- stdout\n${e.stdout}\n--- stderr\n${e.stderr}`);
    });
    expect(stdout, `${where} printed an error:\n${stdout}`).not.toMatch(/"errors"\s*:\s*\[/);
  }
}, 120_000);
