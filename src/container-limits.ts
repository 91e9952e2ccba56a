import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

/** What the process's cgroup lets it use: CPUs by its quota, bytes of memory; null where nothing is set. */
export interface ContainerLimits {
  cpus: number | null;
  memoryBytes: number | null;
}

/** A worker's share of memory: its 160 MB heap bound (start:prod), what lives outside the heap, and some room. */
export const MEMORY_PER_WORKER_BYTES = 256 * 1024 * 1024;
/**
 * Less than this a worker, and the kernel may kill workers under load (SIGKILL, exit 137) before they shed any: one
 * worker in a memory cgroup peaked at 98–121 MiB at 500 connections (cold 50-user lists), and in 96 MiB the kernel killed
 * it within the 20 s run (`bench/memory-limit.ts`, bench/RESULTS.md, session 54).
 */
export const MIN_MEMORY_PER_WORKER_BYTES = 128 * 1024 * 1024;
/** cgroup v1 says "no limit" with a number near 2^63. */
const NO_MEMORY_LIMIT = 2 ** 60;

const read = (path: string): string | undefined => {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
};

/** The cgroup directories from `path` up to the hierarchy's root, deepest first: a parent's limit binds its children. */
function upward(mount: string, path: string): string[] {
  const dirs: string[] = [];
  for (let p = path; ; p = p.slice(0, p.lastIndexOf('/')) || '/') {
    dirs.push(join(mount, p));
    if (p === '/') return dirs;
  }
}

const smallest = (values: (number | null)[]): number | null => values.reduce<number | null>((min, v) => (v !== null && (min === null || v < min) ? v : min), null);

/**
 * The CPU quota and memory limit of this process's cgroup (v2, or v1's `cpu` and `memory` controllers), as a
 * container runtime or systemd sets them. Node 20's `availableParallelism()` counts the machine's cores, not the
 * quota: a pod allowed 2 CPUs on a 32-core node ran 32 workers, and 32 × ~200 MB of memory.
 */
export function containerLimits(root = '/sys/fs/cgroup', procCgroup = '/proc/self/cgroup'): ContainerLimits {
  const lines = (read(procCgroup) ?? '').split('\n').filter(Boolean);
  const cpus: (number | null)[] = [];
  const memory: (number | null)[] = [];
  for (const line of lines) {
    const [, controllers = '', path = '/'] = line.split(':');
    if (controllers === '') {
      // v2: one hierarchy, at the root (pure v2) or under unified/ (hybrid).
      const mount = read(join(root, 'cgroup.controllers')) !== undefined ? root : join(root, 'unified');
      for (const dir of upward(mount, path)) {
        const [quota, period] = (read(join(dir, 'cpu.max')) ?? 'max').split(/\s+/);
        if (quota !== 'max' && Number(quota) > 0 && Number(period) > 0) cpus.push(Number(quota) / Number(period));
        const bytes = read(join(dir, 'memory.max'));
        if (bytes !== undefined && bytes !== 'max' && Number(bytes) > 0) memory.push(Number(bytes));
      }
    } else {
      const names = controllers.split(',');
      if (names.includes('cpu')) {
        // Mounted as cpu,cpuacct (with cpu/ a link to it on most hosts), or as cpu alone.
        const mount = [join(root, 'cpu'), join(root, controllers)].find((m) => existsSync(m));
        for (const dir of mount ? upward(mount, path) : []) {
          const quota = Number(read(join(dir, 'cpu.cfs_quota_us')));
          const period = Number(read(join(dir, 'cpu.cfs_period_us')));
          if (quota > 0 && period > 0) cpus.push(quota / period);
        }
      }
      if (names.includes('memory')) {
        for (const dir of upward(join(root, 'memory'), path)) {
          const bytes = Number(read(join(dir, 'memory.limit_in_bytes')));
          if (bytes > 0 && bytes < NO_MEMORY_LIMIT) memory.push(bytes);
        }
      }
    }
  }
  return { cpus: smallest(cpus), memoryBytes: smallest(memory) };
}

/**
 * Production's default WORKERS: a worker per core, but no more than the CPU quota allows (rounded down, at least
 * one) nor than the memory limit holds at MEMORY_PER_WORKER_BYTES each. `limitedBy` says which limit set it, for
 * the start-up line; null when the cores did.
 */
export function defaultWorkers(limits: ContainerLimits = containerLimits(), cores = availableParallelism()): { workers: number; limitedBy: string | null } {
  const byCpu = limits.cpus === null ? Infinity : Math.max(1, Math.floor(limits.cpus));
  const byMemory = limits.memoryBytes === null ? Infinity : Math.max(1, Math.floor(limits.memoryBytes / MEMORY_PER_WORKER_BYTES));
  const workers = Math.min(cores, byCpu, byMemory);
  if (workers === cores) return { workers, limitedBy: null };
  const mib = (n: number) => `${Math.round(n / 1024 / 1024)} MiB`;
  const cpus = Number(limits.cpus?.toFixed(2));
  const limitedBy =
    workers === byCpu
      ? `the cgroup's CPU quota: ${cpus} CPU${cpus === 1 ? '' : 's'} of the machine's ${cores} cores`
      : `the cgroup's memory limit: ${mib(limits.memoryBytes!)}, at ${mib(MEMORY_PER_WORKER_BYTES)} a worker, for the machine's ${cores} cores`;
  return { workers, limitedBy };
}

/** What to say when the memory limit leaves each of `workers` less than MIN_MEMORY_PER_WORKER_BYTES; null when it does not. */
export function memoryShortfall(workers: number, limits: ContainerLimits = containerLimits()): string | null {
  if (limits.memoryBytes === null || limits.memoryBytes / workers >= MIN_MEMORY_PER_WORKER_BYTES) return null;
  const mib = (n: number) => `${Math.round(n / 1024 / 1024)} MiB`;
  const need = `${mib(MIN_MEMORY_PER_WORKER_BYTES)} a worker needs under load`;
  return workers === 1
    ? `The cgroup's memory limit, ${mib(limits.memoryBytes)}, is less than the ${need}: the kernel may kill it (SIGKILL, exit code 137) before load is shed. Raise the limit`
    : `The cgroup's memory limit, ${mib(limits.memoryBytes)}, leaves each of ${workers} workers ${mib(limits.memoryBytes / workers)}, less than the ${need}: the kernel may kill them (SIGKILL, exit code 137) before load is shed. Raise the limit or lower WORKERS`;
}
