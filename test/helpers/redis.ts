import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection, createServer } from 'node:net';
import { Redis } from 'ioredis';
import { describe } from 'vitest';
import { runCommand, type Child } from './processes.js';
import type { TestTls } from './tls.js';

export { makeTestTls } from './tls.js';

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
      // A Redis with a password answers NOAUTH: up all the same.
      resolve(/^(\+PONG|-NOAUTH)/.test(d.toString()));
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** Waits (5 s at most) for a server just started to answer; it failing to start, or to answer, is an error with its output. */
async function untilAnswers(started: Child, answers: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let n = 0; n < 100 && started.child.exitCode === null && started.child.signalCode === null; n++) {
    if (await answers()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not start: ${started.output()}`);
}

/** Whether the server on port answers, in plain text or (`tls`) only over TLS. */
function answersAt(port: number, tls: TestTls | undefined): boolean | Promise<boolean> {
  return tls ? tlsPing(port, tls) : ping(port);
}

/**
 * Where a test server listens, as `name value` settings: `port`, or (`tls`) only TLS there with the test certificate,
 * clients not asked for one; `more` are further TLS settings (`tls-replication`, `tls-cluster`).
 */
function listening(port: number, tls: TestTls | undefined, ...more: [string, string][]): [string, string][] {
  if (!tls) return [['port', String(port)]];
  return [['port', '0'], ['tls-port', String(port)], ['tls-cert-file', tls.cert], ['tls-key-file', tls.key], ['tls-ca-cert-file', tls.ca], ['tls-auth-clients', 'no'], ...more];
}

/** Settings as redis-server's arguments. */
const asArguments = (settings: [string, string][]): string[] => settings.flatMap(([name, value]) => [`--${name}`, value]);

/** Whether a Redis speaking only TLS answers on port (through redis-cli). */
function tlsPing(port: number, tls: TestTls): boolean {
  try {
    return /PONG|NOAUTH/.test(execFileSync('redis-cli', ['--tls', '--cacert', tls.ca, '-p', String(port), 'ping'], { encoding: 'utf8', stdio: 'pipe' }));
  } catch {
    return false;
  }
}

/** Whether nothing listens on 127.0.0.1:port (we can bind it). */
function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/*
 * Port ranges, disjoint and below Linux's ephemeral range (32768–60999), so a
 * test Redis never lands on a port an outgoing connection holds: single servers
 * 15000–19999; cluster masters 10000–14999, whose cluster bus listens on
 * port + 10000 (20000–24999); sentinels 25000–29999.
 *
 * Each range is cut in WORKER_SHARES, and a test worker draws only from its own
 * share (vitest numbers its workers from 1 in VITEST_POOL_ID): drawn at random
 * from the whole range, two suites running at once now and then got the same
 * port, and the second server's readiness check was answered by the first.
 * Within its share a worker goes round from a random start.
 */
const WORKER_SHARES = 8;
const share = (Number(process.env.VITEST_POOL_ID ?? '1') - 1) % WORKER_SHARES;
let drawn = Math.floor(Math.random() * 1_000_000);
/** A port of this worker's share of `count` from `from`, with `span` consecutive ones from it in the share too. */
const portIn = (from: number, count: number, span = 1) => {
  const size = Math.floor(count / WORKER_SHARES);
  return from + share * size + (drawn++ % (size - span + 1));
};

/** A clear failure, not a readiness check answered by another process's server. */
async function mustBeFree(port: number, what: string): Promise<void> {
  if (!(await isFree(port))) throw new Error(`${what}: port ${port} is taken (another process listens there)`);
}

export class TestRedis {
  private process: Child | undefined;
  readonly port = portIn(15_000, 5_000);
  /** Its own folder: a replica's full sync or a save writes a file, never into the working directory. */
  private readonly dir = mkdtempSync(join(tmpdir(), 'redis-'));

  /** `tls`: it speaks only TLS, with this certificate (`rediss://`). */
  constructor(private readonly tls?: TestTls) {}

  get url(): string {
    return `${this.tls ? 'rediss' : 'redis'}://127.0.0.1:${this.port}`;
  }

  /** `settings`: more of redis-server's own, as `--name value` pairs. */
  async start(...settings: string[]): Promise<void> {
    const tls = this.tls;
    mkdirSync(this.dir, { recursive: true }); // again after a stop()
    await mustBeFree(this.port, 'redis-server');
    // DEBUG SLEEP lets a test make this Redis hang without closing connections.
    this.process = runCommand('redis-server', [
      ...asArguments(listening(this.port, tls)),
      '--bind',
      '127.0.0.1',
      // A snapshot schedule no test lives to see: nothing written, and not the Redis "keeps nothing on disk" names.
      '--save',
      '3600 1',
      '--appendonly',
      'no',
      '--enable-debug-command',
      'yes',
      '--dir',
      this.dir,
      ...settings,
    ]);
    await untilAnswers(this.process, () => answersAt(this.port, tls), `redis-server on ${this.port}`);
  }

  async stop(): Promise<void> {
    await this.process?.stop('SIGKILL');
    this.process = undefined;
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A Redis Sentinel on a spare port watching one master under `master` (quorum 1, a master silent for 1 s is down,
 * so `SENTINEL FAILOVER` and a real failure both move it within seconds). Its config file is its own: a sentinel
 * rewrites it.
 */
export class TestSentinel {
  readonly port = portIn(25_000, 5_000);
  private process: Child | undefined;
  private readonly dir = mkdtempSync(join(tmpdir(), 'redis-sentinel-'));

  constructor(
    readonly master: string,
    private readonly masterPort: number,
    /** The password the master and its replicas ask for (`sentinel auth-pass`). */
    private readonly masterPassword?: string,
    /** It speaks only TLS, with this certificate, and reaches the servers over TLS (`tls-replication`). */
    private readonly tls?: TestTls,
  ) {}

  /** A command to the sentinel (`SENTINEL FAILOVER <master>`). */
  async call(...args: string[]): Promise<unknown> {
    const client = new Redis(this.port, this.tls ? { tls: { ca: readFileSync(this.tls.ca) } } : {});
    try {
      return await client.call(args[0]!, ...args.slice(1));
    } finally {
      client.disconnect();
    }
  }

  async start(): Promise<void> {
    const conf = join(this.dir, 'sentinel.conf');
    writeFileSync(
      conf,
      [
        ...listening(this.port, this.tls, ['tls-replication', 'yes']).map(([name, value]) => `${name} ${value}`),
        'bind 127.0.0.1',
        `dir ${this.dir}`,
        `sentinel monitor ${this.master} 127.0.0.1 ${this.masterPort} 1`,
        `sentinel down-after-milliseconds ${this.master} 1000`,
        `sentinel failover-timeout ${this.master} 5000`,
        ...(this.masterPassword === undefined ? [] : [`sentinel auth-pass ${this.master} ${this.masterPassword}`]),
        '',
      ].join('\n'),
    );
    await mustBeFree(this.port, 'redis-sentinel');
    this.process = runCommand('redis-server', [conf, '--sentinel']);
    await untilAnswers(this.process, () => answersAt(this.port, this.tls), `redis-sentinel on ${this.port}`);
  }

  async stop(): Promise<void> {
    await this.process?.stop('SIGKILL');
    this.process = undefined;
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A Redis Cluster of three masters (no replicas) on spare loopback ports,
 * each `redis-server` in its own folder with its own nodes.conf, made with
 * `redis-cli --cluster create`. A short node timeout, so a stopped master is
 * noticed in about a second; `restart(i)` brings one back with its nodes.conf.
 */
export class TestRedisCluster {
  ports: number[] = [];
  private readonly dir = mkdtempSync(join(tmpdir(), 'redis-cluster-'));
  private readonly processes: (Child | undefined)[] = [];

  /**
   * `password`: every node asks for it (requirepass), of clients and of each other (masterauth). `tls`: every node
   * speaks only TLS, to clients and on the cluster bus, with this certificate.
   */
  constructor(private readonly options: { password?: string; tls?: TestTls } = {}) {}

  /** REDIS_CLUSTER_NODES for these masters (the scheme and password, if any, given once, on the first). */
  get nodes(): string {
    const scheme = this.options.tls ? 'rediss' : 'redis';
    const password = this.options.password === undefined ? '' : `:${encodeURIComponent(this.options.password)}@`;
    const first = this.options.tls || password ? `${scheme}://${password}` : '';
    return this.ports.map((p, i) => `${i === 0 ? first : ''}127.0.0.1:${p}`).join(',');
  }

  /** redis-cli's arguments for the password and TLS, if any. */
  private get auth(): string[] {
    const { password, tls } = this.options;
    return [...(password === undefined ? [] : ['-a', password, '--no-auth-warning']), ...(tls ? ['--tls', '--cacert', tls.ca] : [])];
  }

  private async startNode(i: number): Promise<void> {
    const port = this.ports[i]!;
    const dir = join(this.dir, String(port));
    mkdirSync(dir, { recursive: true });
    const tls = this.options.tls;
    this.processes[i] = runCommand('redis-server', [
      ...asArguments(listening(port, tls, ['tls-cluster', 'yes'])),
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
      '3600 1',
      '--appendonly',
      'no',
      ...(this.options.password === undefined ? [] : ['--requirepass', this.options.password, '--masterauth', this.options.password]),
    ]);
    await untilAnswers(this.processes[i]!, () => answersAt(port, this.options.tls), `redis-server (cluster) on ${port}`);
  }

  /** Three consecutive ports whose cluster bus ports are free too. */
  private static async freePorts(): Promise<number[]> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const base = portIn(10_000, 5_000, 3);
      const ports = [base, base + 1, base + 2];
      const free = await Promise.all(ports.flatMap((p) => [isFree(p), isFree(p + 10_000)]));
      if (free.every(Boolean)) return ports;
    }
    throw new Error('no three free ports (and cluster bus ports) in 10000–14999 for a test Redis Cluster');
  }

  async start(): Promise<void> {
    this.ports = await TestRedisCluster.freePorts();
    await Promise.all(this.ports.map((_, i) => this.startNode(i)));
    try {
      execFileSync('redis-cli', [...this.auth, '--cluster', 'create', ...this.ports.map((p) => `127.0.0.1:${p}`), '--cluster-yes'], { encoding: 'utf8', stdio: 'pipe' });
    } catch (error) {
      const { stdout, stderr } = error as { stdout?: string; stderr?: string };
      const servers = this.processes.map((p, i) => `--- ${this.ports[i]}:\n${p?.output() ?? ''}`).join('\n');
      throw new Error(`redis-cli --cluster create failed:\n${stdout ?? ''}${stderr ?? ''}\n${servers}`);
    }
    await this.waitUntilOk();
  }

  /** Every node says cluster_state:ok. */
  async waitUntilOk(timeoutMs = 15_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const ok = this.ports.every((p) => {
        try {
          return execFileSync('redis-cli', [...this.auth, '-p', String(p), 'cluster', 'info'], { encoding: 'utf8' }).includes('cluster_state:ok');
        } catch {
          return false;
        }
      });
      if (ok) return;
      if (Date.now() > until) {
        const info = this.ports.map((p) => {
          try {
            return `--- ${p}: ${execFileSync('redis-cli', [...this.auth, '-p', String(p), 'cluster', 'info'], { encoding: 'utf8' })
              .split('\n')
              .slice(0, 3)
              .join(' ')}`;
          } catch (error) {
            return `--- ${p}: ${(error as Error).message}`;
          }
        });
        throw new Error(`the Redis Cluster did not reach cluster_state:ok in ${timeoutMs} ms:\n${info.join('\n')}`);
      }
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
