/**
 * What the server allocates, by function: preload it into ours, e.g.
 * `BENCH_NODE_ARGS="--max-old-space-size=160 --min-semi-space-size=16 --import ./bench/alloc-profile.mjs"`
 * (plain JavaScript: dist/main.js runs on plain node). From ALLOC_PROFILE_START_S
 * (default 5, after the bench's warm-up) for ALLOC_PROFILE_S seconds (default 8,
 * inside the measured run) it samples allocations every 8 KB, the ones collected
 * since included (node's --heap-prof keeps only what is still alive), and writes
 * bench/.tmp/alloc-<pid>.heapprofile. `npx tsx bench/profile-summary.ts <file>`
 * sums it by function. Bytes allocated per query (the total over the window's
 * queries) move far less between runs on this VM than CPU does, so an A/B of
 * two builds reads better in them. It slows the server: not for figures.
 * ALLOC_PROFILE_SURVIVORS=1 leaves out what a young-generation collection
 * freed: what is left is what outlived the young generation (promoted, then
 * freed by a full collection, or still alive), the bytes that make full
 * collections come round.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import process from 'node:process';
import { setTimeout } from 'node:timers';

const START_MS = Number(process.env.ALLOC_PROFILE_START_S ?? 5) * 1000;
const DURATION_MS = Number(process.env.ALLOC_PROFILE_S ?? 8) * 1000;

const session = new Session();
session.connect();
setTimeout(async () => {
  await session.post('HeapProfiler.enable');
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: 8192,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: !process.env.ALLOC_PROFILE_SURVIVORS,
  });
  setTimeout(async () => {
    const { profile } = await session.post('HeapProfiler.stopSampling');
    mkdirSync('bench/.tmp', { recursive: true });
    writeFileSync(`bench/.tmp/alloc-${process.pid}.heapprofile`, JSON.stringify(profile));
  }, DURATION_MS).unref();
}, START_MS).unref();
