/**
 * `npx tsx bench/profile-summary.ts <file.cpuprofile> [top]`: a V8 CPU
 * profile (`BENCH_PROFILE=1` writes one to bench/.tmp/) summed by function —
 * self time and inclusive time as shares of all samples, the top frames of
 * each, and self time per package or file — so RESULTS.md can name where a path's CPU goes.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
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
const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

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
for (const id of profile.samples) {
  const leaf = byId.get(id);
  if (!leaf) continue;
  const leafName = frameName(leaf);
  selfCount.set(leafName, (selfCount.get(leafName) ?? 0) + 1);
  const place = placeOf(leaf);
  selfByPlace.set(place, (selfByPlace.get(place) ?? 0) + 1);
  // Each frame once per sample, however deep it recurses.
  const seen = new Set<string>();
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const name = frameName(byId.get(at)!);
    if (seen.has(name)) continue;
    seen.add(name);
    inclusiveCount.set(name, (inclusiveCount.get(name) ?? 0) + 1);
  }
}

const total = profile.samples.length;
const print = (title: string, counts: Map<string, number>) => {
  console.log(`\n${title} (${total} samples)`);
  for (const [name, n] of [...counts].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${((n / total) * 100).toFixed(1).padStart(5)} %  ${name}`);
};
print('self time', selfCount);
print('inclusive time', inclusiveCount);
print('self time by package or file', selfByPlace);
