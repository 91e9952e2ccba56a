import { execFileSync } from 'node:child_process';
import { createConnection } from 'node:net';
import { describe } from 'vitest';
import { runCommand, type Child } from './processes.js';

/**
 * Suites that need Redis start their own redis-server on a spare port (so they
 * can stop and restart it). Without a redis-server binary such a suite fails
 * in CI (REDIS_REQUIRED or CI set) and is skipped, loudly, elsewhere.
 */
function hasRedisServer(): boolean {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const available = hasRedisServer();
const required = process.env.REDIS_REQUIRED === '1' || process.env.CI === 'true';

export const describeWithRedis: typeof describe = ((name: string, fn: () => void) => {
  if (available) return describe(name, fn);
  if (required) {
    return describe(name, () => {
      throw new Error('redis-server is required (REDIS_REQUIRED/CI) but not installed: apt-get install redis-server');
    });
  }
  console.warn(`\n!!! SKIPPING "${name}": no redis-server on this machine (apt-get install redis-server). CI fails without it.\n`);
  return describe.skip(name, fn);
}) as typeof describe;

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' }, () => socket.write('PING\r\n'));
    socket.setTimeout(500);
    socket.once('data', (d) => {
      socket.destroy();
      resolve(d.toString().startsWith('+PONG'));
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

export class TestRedis {
  private process: Child | undefined;
  readonly port = 16_000 + Math.floor(Math.random() * 10_000);
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    // DEBUG SLEEP lets a test make this Redis hang without closing connections.
    this.process = runCommand('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--enable-debug-command', 'yes']);
    for (let i = 0; i < 100; i++) {
      if (await ping(this.port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`redis-server did not start on ${this.port}: ${this.process.output()}`);
  }

  async stop(): Promise<void> {
    await this.process?.stop('SIGKILL');
    this.process = undefined;
  }
}
