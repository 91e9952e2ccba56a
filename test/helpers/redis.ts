import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

/**
 * A Redis Cluster of three masters (no replicas) on spare loopback ports,
 * each `redis-server` in its own folder with its own nodes.conf, made with
 * `redis-cli --cluster create`. A short node timeout, so a stopped master is
 * noticed in about a second; `restart(i)` brings one back with its nodes.conf.
 */
export class TestRedisCluster {
  readonly ports: number[];
  private readonly dir = mkdtempSync(join(tmpdir(), 'redis-cluster-'));
  private readonly processes: (Child | undefined)[] = [];

  constructor() {
    const base = 20_000 + Math.floor(Math.random() * 5_000);
    this.ports = [base, base + 1, base + 2];
  }

  /** REDIS_CLUSTER_NODES for these masters. */
  get nodes(): string {
    return this.ports.map((p) => `127.0.0.1:${p}`).join(',');
  }

  private async startNode(i: number): Promise<void> {
    const port = this.ports[i]!;
    const dir = join(this.dir, String(port));
    mkdirSync(dir, { recursive: true });
    this.processes[i] = runCommand('redis-server', [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      join(dir, 'nodes.conf'),
      '--cluster-node-timeout',
      '1000',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
    ]);
    for (let n = 0; n < 100; n++) {
      if (await ping(port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`redis-server (cluster) did not start on ${port}: ${this.processes[i]!.output()}`);
  }

  async start(): Promise<void> {
    await Promise.all(this.ports.map((_, i) => this.startNode(i)));
    execFileSync('redis-cli', ['--cluster', 'create', ...this.ports.map((p) => `127.0.0.1:${p}`), '--cluster-yes'], { stdio: 'ignore' });
    await this.waitUntilOk();
  }

  /** Every node says cluster_state:ok. */
  async waitUntilOk(timeoutMs = 15_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const ok = this.ports.every((p) => {
        try {
          return execFileSync('redis-cli', ['-p', String(p), 'cluster', 'info'], { encoding: 'utf8' }).includes('cluster_state:ok');
        } catch {
          return false;
        }
      });
      if (ok) return;
      if (Date.now() > until) throw new Error('the Redis Cluster did not reach cluster_state:ok');
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async stopNode(i: number): Promise<void> {
    await this.processes[i]?.stop('SIGKILL');
    this.processes[i] = undefined;
  }

  restart(i: number): Promise<void> {
    return this.startNode(i);
  }

  async stop(): Promise<void> {
    await Promise.all(this.processes.map((p) => p?.stop('SIGKILL')));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
