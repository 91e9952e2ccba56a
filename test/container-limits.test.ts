import { mkdirSync, mkdtempSync, rmdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { containerLimits, defaultWorkers, MEMORY_PER_WORKER_BYTES } from '../src/container-limits.js';
import { cleanEnv, runCommand, startUpstreamsProcess, stopAll } from './helpers/processes.js';

/**
 * Production's default WORKERS follows what the container allows, not the machine's cores: Node 20 counts cores, and
 * a pod allowed 2 CPUs on a 32-core node ran 32 workers (and 32 × ~200 MB). Read from cgroup files as the kernel
 * lays them out (v2, hybrid, v1) in a directory of the test's, and once from a real cgroup this test makes.
 */
afterAll(stopAll);

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'cgroup-'));
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), `${content}\n`);
  }
  return root;
}

describe('containerLimits', () => {
  it('cgroup v2: cpu.max and memory.max of the process cgroup and its parents, the smallest', () => {
    const root = tree({
      'proc-cgroup': '0::/kubepods/pod1/app',
      'fs/cgroup.controllers': 'cpu memory',
      'fs/kubepods/pod1/cpu.max': '250000 100000',
      'fs/kubepods/pod1/memory.max': String(1024 * 1024 * 1024),
      'fs/kubepods/pod1/app/cpu.max': 'max 100000',
      'fs/kubepods/pod1/app/memory.max': 'max',
    });
    expect(containerLimits(join(root, 'fs'), join(root, 'proc-cgroup'))).toEqual({ cpus: 2.5, memoryBytes: 1024 * 1024 * 1024 });
  });

  it('cgroup v2 under unified/ (a hybrid host), and a namespaced path of /', () => {
    const root = tree({ 'proc-cgroup': '0::/', 'fs/unified/cpu.max': '50000 100000' });
    expect(containerLimits(join(root, 'fs'), join(root, 'proc-cgroup'))).toEqual({ cpus: 0.5, memoryBytes: null });
  });

  it("cgroup v1: the cpu controller's quota (-1: none) and the memory controller's limit (near 2^63: none)", () => {
    const root = tree({
      'proc-cgroup': ['12:memory:/docker/abc', '4:cpu,cpuacct:/docker/abc', '1:name=systemd:/docker/abc'].join('\n'),
      'fs/cpu,cpuacct/docker/abc/cpu.cfs_quota_us': '300000',
      'fs/cpu,cpuacct/docker/abc/cpu.cfs_period_us': '100000',
      'fs/cpu,cpuacct/docker/cpu.cfs_quota_us': '-1',
      'fs/cpu,cpuacct/docker/cpu.cfs_period_us': '100000',
      'fs/memory/docker/abc/memory.limit_in_bytes': String(512 * 1024 * 1024),
      'fs/memory/memory.limit_in_bytes': '9223372036854771712',
    });
    expect(containerLimits(join(root, 'fs'), join(root, 'proc-cgroup'))).toEqual({ cpus: 3, memoryBytes: 512 * 1024 * 1024 });
  });

  it('nothing readable (not Linux, no cgroup fs): no limits', () => {
    expect(containerLimits('/nonexistent', '/nonexistent/cgroup')).toEqual({ cpus: null, memoryBytes: null });
  });
});

describe('defaultWorkers', () => {
  it('a worker per core, at most the CPU quota rounded down (at least one) and what the memory holds at 256 MiB each', () => {
    expect(defaultWorkers({ cpus: null, memoryBytes: null }, 32)).toEqual({ workers: 32, limitedBy: null });
    expect(defaultWorkers({ cpus: 2.5, memoryBytes: null }, 32)).toEqual({ workers: 2, limitedBy: "the cgroup's CPU quota: 2.5 CPUs of the machine's 32 cores" });
    expect(defaultWorkers({ cpus: 0.5, memoryBytes: null }, 32).workers).toBe(1);
    expect(defaultWorkers({ cpus: 8, memoryBytes: 4 * MEMORY_PER_WORKER_BYTES }, 32)).toEqual({
      workers: 4,
      limitedBy: "the cgroup's memory limit: 1024 MiB, at 256 MiB a worker, for the machine's 32 cores",
    });
    expect(defaultWorkers({ cpus: 64, memoryBytes: null }, 32)).toEqual({ workers: 32, limitedBy: null });
  });
});

/** A cpu cgroup of this machine allowing one CPU, when cgroup v1's cpu controller can be written here (as root); else null. */
function oneCpuCgroup(): string | null {
  const dir = `/sys/fs/cgroup/cpu/gateway-test-${process.pid}`;
  try {
    mkdirSync(dir);
    writeFileSync(join(dir, 'cpu.cfs_period_us'), '100000');
    writeFileSync(join(dir, 'cpu.cfs_quota_us'), '100000');
    return dir;
  } catch {
    return null;
  }
}

describe('a server started in production inside a cgroup allowing one CPU', () => {
  const cgroup = availableParallelism() >= 2 ? oneCpuCgroup() : null;
  afterAll(async () => {
    await stopAll();
    if (cgroup) rmdirSync(cgroup);
  });

  it.runIf(cgroup !== null)(
    'runs one process, and says why',
    async () => {
      const { env: vendors } = await startUpstreamsProcess();
      const server = runCommand(
        'bash',
        ['-c', `echo $$ > ${cgroup}/cgroup.procs && exec "$0" --import tsx src/main.ts`, process.execPath],
        cleanEnv({ ...vendors, NODE_ENV: 'production', PORT: '0', LOG_LEVEL: 'info', AUTH_JWT_SECRET: 'container-limits-test-secret-0123456789abcdef' }),
      );
      await server.waitFor(/GraphQL endpoint: (\S+)/, 60_000);
      const out = server.output();
      expect(out).toContain(
        `"workers":1,"msg":"WORKERS is 1 by default here, not one per core: set by the cgroup's CPU quota: 1 CPU of the machine's ${availableParallelism()} cores`,
      );
      expect(out).not.toMatch(/Primary: starting/);
      await server.stop('SIGTERM');
    },
    60_000,
  );
});
