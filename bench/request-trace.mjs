/**
 * Where a request's time goes, seen from inside the server: preload it into
 * ours, e.g. `BENCH_NODE_ARGS="--max-old-space-size=160 --min-semi-space-size=16 --import ./bench/request-trace.mjs"`
 * (plain JavaScript: dist/main.js runs on plain node). Every second it writes
 * bench/.tmp/request-trace-<pid>.txt: the server's own duration of each
 * request (from its first byte to the response's end), the duration of each
 * vendor call as the gateway saw it (undici's request created → its last
 * byte), each by route, over the last REQUEST_TRACE_WINDOW_S seconds (default
 * 9.5, inside the bench's 10 s measured run), and the event loop's delay.
 * Beside the bench's client-side p99 and the simulator's own service time,
 * it tells whose time a tail is. It adds a little CPU: not for figures.
 */
import dc from 'node:diagnostics_channel';
import { mkdirSync, writeFileSync } from 'node:fs';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import process from 'node:process';
import { setInterval } from 'node:timers';

const WINDOW_MS = Number(process.env.REQUEST_TRACE_WINDOW_S ?? 9.5) * 1000;
/** Per route: [start, duration] in ms since the process began. */
const served = new Map();
const called = new Map();
const startedAt = new WeakMap();

function record(into, route, start) {
  let list = into.get(route);
  if (!list) into.set(route, (list = []));
  list.push([start, performance.now() - start]);
}

dc.subscribe('http.server.request.start', ({ request }) => startedAt.set(request, performance.now()));
dc.subscribe('http.server.response.finish', ({ request }) => {
  const start = startedAt.get(request);
  if (start !== undefined) record(served, `${request.method} ${request.url.split('?')[0]}`, start);
});
dc.subscribe('undici:request:create', ({ request }) => startedAt.set(request, performance.now()));
dc.subscribe('undici:request:trailers', ({ request }) => {
  const start = startedAt.get(request);
  if (start !== undefined) record(called, `${request.method} ${request.origin}`, start);
});
const loopDelay = monitorEventLoopDelay({ resolution: 1 });
loopDelay.enable();

function summary(byRoute) {
  const lines = [];
  for (const [route, all] of byRoute) {
    const end = all.reduce((m, [start]) => Math.max(m, start), 0);
    const ms = all
      .filter(([start]) => start > end - WINDOW_MS)
      .map(([, d]) => d)
      .sort((a, b) => a - b);
    const at = (p) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))].toFixed(1);
    lines.push(`  ${route}: n=${ms.length} p50 ${at(0.5)} p90 ${at(0.9)} p99 ${at(0.99)} ms`);
  }
  return lines.join('\n');
}

mkdirSync('bench/.tmp', { recursive: true });
setInterval(() => {
  const ms = (ns) => (ns / 1e6).toFixed(1);
  writeFileSync(
    `bench/.tmp/request-trace-${process.pid}.txt`,
    `served (server-side):\n${summary(served)}\nvendor calls (as the gateway saw them):\n${summary(called)}\nevent-loop delay since start: p50 ${ms(loopDelay.percentile(50))} p99 ${ms(loopDelay.percentile(99))} max ${ms(loopDelay.max)} ms\n`,
  );
}, 1000).unref();
