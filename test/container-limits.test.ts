import { mkdirSync, mkdtempSync, rmdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { containerLimits, defaultWorkers, MEMORY_PER_WORKER_BYTES, memoryShortfall } from '../src/container-limits.js';
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

  it('says when the memory limit leaves a worker less than it needs under load (set WORKERS, or a small limit)', () => {
    const MiB = 1024 * 1024;
    expect(memoryShortfall(1, { cpus: null, memoryBytes: null })).toBeNull();
    expect(memoryShortfall(4, { cpus: null, memoryBytes: 512 * MiB })).toBeNull();
    expect(memoryShortfall(4, { cpus: null, memoryBytes: 500 * MiB })).toBe(
      "The cgroup's memory limit, 500 MiB, leaves each of 4 workers 125 MiB, less than the 128 MiB a worker needs under load: the kernel may kill them (SIGKILL, exit code 137) before load is shed. Raise the limit or lower WORKERS",
    );
    expect(memoryShortfall(1, { cpus: null, memoryBytes: 96 * MiB })).toBe(
      "The cgroup's memory limit, 96 MiB, is less than the 128 MiB a worker needs under load: the kernel may kill it (SIGKILL, exit code 137) before load is shed. Raise the limit",
    );
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

/** A memory cgroup of this machine allowing `mib` MiB, when cgroup v1's memory controller can be written here; else null. */
function memoryCgroup(mib: number): string | null {
  const dir = `/sys/fs/cgroup/memory/gateway-test-${process.pid}`;
  try {
    mkdirSync(dir);
    writeFileSync(join(dir, 'memory.limit_in_bytes'), String(mib * 1024 * 1024));
    return dir;
  } catch {
    return null;
  }
}

describe('a server started in production inside cgroups allowing one CPU and 127 MiB', () => {
  const cgroup = availableParallelism() >= 2 ? oneCpuCgroup() : null;
  // Enough for an idle server under tsx (115 MiB at start, measured), short of the 128 MiB a worker needs under load.
  const memory = cgroup ? memoryCgroup(127) : null;
  afterAll(async () => {
    await stopAll();
    if (cgroup) rmdirSync(cgroup);
    if (memory) rmdirSync(memory);
  });

  it.runIf(cgroup !== null && memory !== null)(
    'runs one process, says why, and says its memory is short',
    async () => {
      const { env: vendors } = await startUpstreamsProcess();
      const server = runCommand(
        'bash',
        ['-c', `echo $$ > ${cgroup}/cgroup.procs && echo $$ > ${memory}/cgroup.procs && exec "$0" --import tsx src/main.ts`, process.execPath],
        cleanEnv({ ...vendors, NODE_ENV: 'production', PORT: '0', LOG_LEVEL: 'info', AUTH_JWT_SECRET: 'container-limits-test-secret-0123456789abcdef' }),
      );
      await server.waitFor(/GraphQL endpoint: (\S+)/, 60_000);
      await server.waitFor(/memory limit, 127 MiB/, 5_000);
      const out = server.output();
      expect(out).toContain(
        `"workers":1,"msg":"WORKERS is 1 by default here, not one per core: set by the cgroup's CPU quota: 1 CPU of the machine's ${availableParallelism()} cores`,
      );
      expect(out).not.toMatch(/Primary: starting/);
      expect(out).toContain(`"level":40,"time":`);
      expect(out).toMatch(
        /"level":40,"time":\d+,"workers":1,"msg":"The cgroup's memory limit, 127 MiB, is less than the 128 MiB a worker needs under load: the kernel may kill it/,
      );
      await server.stop('SIGTERM');
    },
    60_000,
  );
});
