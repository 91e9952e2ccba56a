/**
 * `npx tsx bench/profile-summary.ts <file.cpuprofile> [top]`: a V8 CPU
 * profile (`BENCH_PROFILE=1` writes one to bench/.tmp/) summed by function —
 * self time and inclusive time as shares of all samples, the top frames of
 * each, and self time per package or file — so RESULTS.md can name where a path's CPU goes.
 * A `.heapprofile` (bench/alloc-profile.mjs) is summed the same way, in bytes allocated.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

/** A sampling heap profile's node: bytes allocated in the function itself, at this stack. */
interface HeapNode {
  callFrame: ProfileNode['callFrame'];
  selfSize: number;
  children: HeapNode[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
}

const [file, topArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: npx tsx bench/profile-summary.ts <file.cpuprofile> [top=25]');
  process.exit(2);
}
const top = Number(topArg ?? 25);
const parsed = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile | { head: HeapNode };

/** A frame's name as RESULTS.md writes it: function, and the file it is in. */
function frameName(node: ProfileNode): string {
  const { functionName, url } = node.callFrame;
  const fn = functionName || '(anonymous)';
  if (!url) return fn;
  const path = url.replace(/^file:\/\//, '');
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path)?.[1];
  return `${fn} (${pkg ?? basename(path)})`;
}

/** Where a frame's code lives: a package, one of our files, node's internals, or V8 itself. */
function placeOf(node: ProfileNode): string {
  const { url, functionName } = node.callFrame;
  if (!url) return functionName.startsWith('(') ? functionName : `(native) ${functionName}`;
  const path = url.replace(/^file:\/\//, '');
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path)?.[1];
  if (pkg) return pkg;
  if (path.startsWith('node:')) return 'node internals';
  return basename(path);
}

const selfCount = new Map<string, number>();
const selfByPlace = new Map<string, number>();
const inclusiveCount = new Map<string, number>();
const add = (into: Map<string, number>, key: string, n: number) => into.set(key, (into.get(key) ?? 0) + n);
let total = 0;

if ('head' in parsed) {
  // Bytes: each node's own allocations, to it and (once per stack, however deep it recurses) to its callers.
  const walk = (node: HeapNode, stack: ReadonlySet<string>) => {
    const frame = { id: 0, callFrame: node.callFrame };
    const name = frameName(frame);
    const here = stack.has(name) ? stack : new Set([...stack, name]);
    total += node.selfSize;
    add(selfCount, name, node.selfSize);
    add(selfByPlace, placeOf(frame), node.selfSize);
    for (const f of here) add(inclusiveCount, f, node.selfSize);
    for (const child of node.children) walk(child, here);
  };
  walk(parsed.head, new Set());
} else {
  const profile = parsed;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  total = profile.samples.length;
  for (const id of profile.samples) {
    const leaf = byId.get(id);
    if (!leaf) continue;
    add(selfCount, frameName(leaf), 1);
    add(selfByPlace, placeOf(leaf), 1);
    // Each frame once per sample, however deep it recurses.
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const name = frameName(byId.get(at)!);
      if (seen.has(name)) continue;
      seen.add(name);
      add(inclusiveCount, name, 1);
    }
  }
}

const heap = 'head' in parsed;
const unit = heap ? `${(total / 1e6).toFixed(1)} MB allocated` : `${total} samples`;
const print = (title: string, counts: Map<string, number>) => {
  console.log(`\n${title} (${unit})`);
  for (const [name, n] of [...counts].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${((n / total) * 100).toFixed(1).padStart(5)} %  ${name}`);
};
const what = heap ? 'bytes' : 'time';
print(`self ${what}`, selfCount);
print(`inclusive ${what}`, inclusiveCount);
print(`self ${what} by package or file`, selfByPlace);
