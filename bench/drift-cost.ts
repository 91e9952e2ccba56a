/**
 * What walking responses for drift costs on the cold path. The sources make
 * the upstream calls of a first-time dashboard (identity search, metrics,
 * unread count, a notification page) and of a 50-user list (the same bulk
 * calls for 50 ids) against the simulated vendors in their own process, with
 * the drift walk on and off, alternating; the CPU of this process (HTTP,
 * parsing, validation, normalisation, drift) is compared, and the time inside
 * the walk is timed directly (the A/B alone is within its noise). Upstream
 * calls without GraphQL execution: the walk's share of a whole request is lower.
 *
 *   npx tsx bench/drift-cost.ts
 */
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { createSources } from '../src/sources/index.js';
import { Dataset } from '../simulator/dataset.js';
import { startUpstreams, UNLIMITED } from './harness.js';

const ROUNDS = Number(process.env.DRIFT_ROUNDS ?? 6);
const CALLS = Number(process.env.DRIFT_CALLS ?? 400);

const upstreams = await startUpstreams();
const e = upstreams.env;
const config = loadConfig({ ...e, ...UNLIMITED });
const sources = createSources(config.upstreams!, config.tuning, { logger: createLogger({ level: 'silent' }), defaultDeadlineMs: 10_000 });
const users = new Dataset().users.map((u) => u.user_id);
const range = { fromSec: Math.floor(Date.now() / 1000 / 3600) * 3600 - 30 * 86_400, toSec: Math.floor(Date.now() / 1000 / 3600) * 3600, granularity: 'DAY' as const };

const scenarios: Record<string, (i: number) => Promise<unknown>> = {
  'dashboard (1 user)': (i) => {
    const id = users[i % users.length]!;
    return Promise.all([
      sources.identity.usersByIds([id]),
      sources.analytics.metrics([id], range),
      sources.notifications.unreadCounts([id]),
      sources.notifications.list(id, 0, 5, false),
    ]);
  },
  'list (50 users)': (i) => {
    const ids = Array.from({ length: 50 }, (_, k) => users[(i * 50 + k) % users.length]!);
    return Promise.all([sources.identity.usersByIds(ids), sources.analytics.metrics(ids, range), sources.notifications.unreadCounts(ids)]);
  },
};

const realInspect = sources.all.map((s) => s.drift.inspect.bind(s.drift));
/** Time spent inside the walk itself, timed around each call: the A/B below cannot resolve a few per cent. */
let inWalkMs = 0;
function walk(on: boolean): void {
  sources.all.forEach((s, i) => {
    const inspect = realInspect[i]!;
    s.drift.inspect = on
      ? (...args) => {
          const t = performance.now();
          inspect(...args);
          inWalkMs += performance.now() - t;
        }
      : () => undefined;
  });
}

async function cpuMs(run: (i: number) => Promise<unknown>): Promise<number> {
  const before = process.cpuUsage();
  for (let i = 0; i < CALLS; i += 8) await Promise.all(Array.from({ length: 8 }, (_, k) => run(i + k)));
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000;
}

console.log(`\n${CALLS} call sets per run, ${ROUNDS} runs each way, alternating; CPU of the calling process in ms per call set\n`);
console.log("| scenario | walk off | walk on | timed inside the walk | its share of the calls' CPU |");
console.log('|---|---|---|---|---|');
for (const [name, run] of Object.entries(scenarios)) {
  await cpuMs(run); // warm-up: JIT, connections
  const off: number[] = [];
  const on: number[] = [];
  inWalkMs = 0;
  for (let r = 0; r < ROUNDS; r++) {
    walk(false);
    off.push(await cpuMs(run));
    walk(true);
    on.push(await cpuMs(run));
  }
  const walkPerSet = inWalkMs / (ROUNDS * CALLS);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const a = median(off) / CALLS;
  const b = median(on) / CALLS;
  console.log(`| ${name} | ${a.toFixed(3)} | ${b.toFixed(3)} | ${walkPerSet.toFixed(4)} | ${((walkPerSet / b) * 100).toFixed(2)} % |`);
}
await sources.close();
upstreams.child.kill('SIGTERM');
process.exit(0);
