/**
 * Subscriptions under load, from the vendor's event to the client: the
 * simulated notifications vendor creates a notification (another app posts it
 * to the vendor directly), signs a webhook to the server, the server
 * invalidates and publishes, and every SSE subscriber to that user's
 * `unreadCount` reads the count again (through the cache and the batcher, so
 * the refetches cost vendor calls) and receives it.
 *
 *   (a) 1,000 SSE subscribers, one per user; 100 events/s spread over them for 30 s
 *   (b) 100 SSE subscribers to one user; 10 events/s for 30 s
 *   (c) memory over 10,000 events: 10 subscribers of one user, heap and RSS every 1,000 events
 *
 * Reports, per scenario: events sent; `notificationAdded` deliveries expected
 * and received (each subscriber counted) with p50/p99 latency (the k-th
 * message a subscriber gets is for the k-th event sent to its user); whether
 * each `unreadCount` stream ended on the vendor's count, and how long after
 * the last event; the server's memory per subscriber; and the unread-count
 * calls the reads cost (ids per call, 429s).
 *
 *   npx tsx bench/subscriptions.ts            # SUB_SECONDS, SUB_USERS, SUB_RATE, SUB_FLAT_EVENTS to change;
 *                                             # SUB_REDIS_URL=redis://127.0.0.1:6379 to carry events through Redis
 */
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { Dataset } from '../simulator/dataset.js';
import type { StatsSnapshot } from '../simulator/index.js';
import { memoryMb, ROOT, start, startProdNodeArgs, startUpstreams } from './harness.js';
import { sseMessages } from './sse-messages.js';

const SECONDS = Number(process.env.SUB_SECONDS ?? 30);
const USERS = Number(process.env.SUB_USERS ?? 1000);
const RATE = Number(process.env.SUB_RATE ?? 100);
const FLAT_EVENTS = Number(process.env.SUB_FLAT_EVENTS ?? 10_000);
const UNREAD_ROUTE = 'GET /v1/unread-counts';
const UNREAD = `subscription($u: ID!) { unreadCount(userId: $u) }`;
const ADDED = `subscription($u: ID!) { notificationAdded(userId: $u) { id } }`;

const secret = randomBytes(32).toString('base64url');
const webhookSecret = `whsec_${randomBytes(24).toString('base64')}`;
const users = new Dataset().users.map((u) => u.user_id);

execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
const upstreams = await startUpstreams({ UPSTREAMS_LATENCY_MS: '20', UPSTREAMS_JITTER_MS: '5' });
const notificationsUrl = upstreams.env.NOTIFICATIONS_URL!;
const server = await start(
  'dist/main.js',
  {
    ...upstreams.env,
    NODE_ENV: 'production',
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    AUTH_JWT_SECRET: secret,
    NOTIFICATIONS_WEBHOOK_SECRET: webhookSecret,
    IDENTITY_CHANGE_FEED: 'off',
    // Events through Redis (its live events' stream) instead of in process; a fresh key prefix each run.
    ...(process.env.SUB_REDIS_URL ? { REDIS_URL: process.env.SUB_REDIS_URL, REDIS_KEY_PREFIX: `subbench${randomBytes(3).toString('hex')}:` } : {}),
    CALLER_RATE_LIMIT_PER_SEC: '100000',
    CALLER_RATE_LIMIT_BURST: '100000',
  },
  /GraphQL endpoint: \S+/,
  startProdNodeArgs(),
);
const url = /GraphQL endpoint: (\S+)/.exec(server.output())![1]!;
const serverPid = server.child.pid!;

async function vendor(method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${notificationsUrl}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return res.json();
}
await vendor('POST', '/__admin/webhook', { url: url.replace('/graphql', '/webhooks/notifications'), secret: webhookSecret });

const token = (sub: string, admin: boolean) =>
  new SignJWT(admin ? { scope: 'admin' } : {}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setExpirationTime('2h').sign(new TextEncoder().encode(secret));

/** One SSE stream: the arrival time of each message, the last value (unread counts), and errors. */
interface Stream {
  userId: string;
  arrivals: number[];
  last: unknown;
  errors: number;
  close(): void;
}

async function subscribe(userId: string, bearer: string, query: string): Promise<Stream> {
  const ac = new AbortController();
  const res = await fetch(url, {
    method: 'POST',
    signal: ac.signal,
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${bearer}` },
    body: JSON.stringify({ query, variables: { u: userId } }),
  });
  if (!res.ok || !res.body) throw new Error(`subscribe ${userId}: ${res.status} ${await res.text()}`);
  const stream: Stream = { userId, arrivals: [], last: undefined, errors: 0, close: () => ac.abort() };
  void (async () => {
    try {
      for await (const message of sseMessages(res.body!)) {
        const data = /^data: (.*)$/m.exec(message)?.[1];
        if (!message.includes('event: next') || !data) continue;
        const at = performance.now();
        const body = JSON.parse(data) as { data?: Record<string, unknown>; errors?: unknown[] };
        if (body.errors?.length) stream.errors++;
        else {
          stream.arrivals.push(at);
          stream.last = body.data?.unreadCount;
        }
      }
    } catch {
      // aborted at the end
    }
  })();
  return stream;
}

/** The vendor creates a notification for a user, as another app would; the time it was asked. */
async function event(userId: string, sent: Map<string, number[]>): Promise<void> {
  const at = performance.now();
  const list = sent.get(userId) ?? [];
  list.push(at);
  sent.set(userId, list);
  const res = await fetch(`${notificationsUrl}/v1/notifications`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${upstreams.env.NOTIFICATIONS_TOKEN}`, 'idempotency-key': randomUUID() },
    body: JSON.stringify({ user: userId, title: 'bench', body: 'b', channel: 'in_app' }),
  });
  await res.arrayBuffer();
}

/** The vendor's own unread counts, asked directly (not counted: the stats are read before). */
async function vendorCounts(ids: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (let i = 0; i < ids.length; i += 100) {
    const batch = ids.slice(i, i + 100);
    const res = await fetch(`${notificationsUrl}/v1/unread-counts?user_ids=${batch.map(encodeURIComponent).join(',')}`, {
      headers: { authorization: `Bearer ${upstreams.env.NOTIFICATIONS_TOKEN}` },
    });
    const { counts } = (await res.json()) as { counts: Record<string, number> };
    for (const id of batch) out.set(id, counts[id] ?? 0);
  }
  return out;
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(url.replace('/graphql', '/metrics'))).text();
  return Number(
    text
      .split('\n')
      .find((l) => l.startsWith(`${name} `))
      ?.split(' ')[1] ?? NaN,
  );
}

const percentile = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]! : NaN);
const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Outcome {
  scenario: string;
  subscribers: number;
  events: number;
  expected: number;
  delivered: number;
  errors: number;
  p50: number;
  p99: number;
  countsRight: number;
  countP99: number;
  kbPerSubscriber: number;
  unreadCalls: number;
  idsPerCall: number;
  throttled: number;
}

/**
 * Each subscriber holds two SSE streams: `notificationAdded` (every event must arrive: counted, k-th message ↔ k-th event)
 * and `unreadCount` (a state: bursts fold, the last count must be the vendor's; each message is a read through the cache).
 */
async function scenario(name: string, subscribers: { userId: string; bearer: string }[], targets: string[], rate: number, seconds: number): Promise<Outcome> {
  process.stdout.write(`${name}: ${subscribers.length} subscribers connecting… `);
  await settle(1000);
  const rssBefore = memoryMb(serverPid, 'VmRSS');
  const added: Stream[] = [];
  const unread: Stream[] = [];
  for (let i = 0; i < subscribers.length; i += 50) {
    const batch = subscribers.slice(i, i + 50);
    added.push(...(await Promise.all(batch.map((s) => subscribe(s.userId, s.bearer, ADDED)))));
    unread.push(...(await Promise.all(batch.map((s) => subscribe(s.userId, s.bearer, UNREAD)))));
  }
  await settle(1500);
  const rssConnected = memoryMb(serverPid, 'VmRSS');
  await vendor('DELETE', '/__admin/stats');
  const sent = new Map<string, number[]>();
  const total = rate * seconds;
  process.stdout.write(`sending ${total} events at ${rate}/s `);
  const started = performance.now();
  const pending: Promise<void>[] = [];
  for (let n = 0; n < total; n++) {
    const due = started + (n * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await settle(wait);
    pending.push(event(targets[n % targets.length]!, sent));
    if (n % (rate * 5) === 0) process.stdout.write('.');
  }
  await Promise.all(pending);
  await settle(3000);
  const stats = (await vendor('GET', '/__admin/stats')) as StatsSnapshot;
  const counts = await vendorCounts([...new Set(subscribers.map((s) => s.userId))]);
  const latencies: number[] = [];
  const countLatencies: number[] = [];
  let expected = 0;
  let delivered = 0;
  let errors = 0;
  let countsRight = 0;
  for (const s of added) {
    const times = sent.get(s.userId) ?? [];
    expected += times.length;
    delivered += Math.min(times.length, s.arrivals.length);
    errors += s.errors;
    s.arrivals.forEach((at, k) => {
      if (times[k] !== undefined) latencies.push(at - times[k]);
    });
  }
  for (const s of unread) {
    const times = sent.get(s.userId) ?? [];
    errors += s.errors;
    if (s.last === counts.get(s.userId)) countsRight++;
    // How long after its user's last event the final count arrived.
    if (times.length && s.arrivals.length) countLatencies.push(s.arrivals.at(-1)! - times.at(-1)!);
  }
  for (const s of [...added, ...unread]) s.close();
  latencies.sort((a, b) => a - b);
  countLatencies.sort((a, b) => a - b);
  const unreadRoute = stats.routes[UNREAD_ROUTE];
  const outcome: Outcome = {
    scenario: name,
    subscribers: subscribers.length,
    events: total,
    expected,
    delivered,
    errors,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    countsRight,
    countP99: percentile(countLatencies, 99),
    kbPerSubscriber: ((rssConnected - rssBefore) * 1024) / subscribers.length,
    unreadCalls: unreadRoute?.calls ?? 0,
    idsPerCall: unreadRoute?.batchSizes.length ? unreadRoute.batchSizes.reduce((a, b) => a + b, 0) / unreadRoute.batchSizes.length : 0,
    throttled: stats.throttled,
  };
  console.log(` ${delivered}/${expected} delivered, p99 ${outcome.p99.toFixed(1)} ms, ${countsRight}/${unread.length} final counts right`);
  await settle(1000);
  return outcome;
}

/**
 * (c) memory over 10,000 events: the server's heap and RSS every 1,000 events while 10 subscribers of one user hear them
 * all (5 notificationAdded, 5 unreadCount). The vendor answers at once here, so 10,000 events take seconds, not minutes.
 */
async function flatMemory(): Promise<{ samples: { events: number; heapMb: number; rssMb: number }[]; delivered: number; expected: number; countsRight: number }> {
  await vendor('POST', '/__admin/faults', {});
  const userId = users[999]!;
  const streams = await Promise.all(Array.from({ length: 10 }, async (_, i) => subscribe(userId, await token(`flat-watcher-${i}`, true), i < 5 ? ADDED : UNREAD)));
  const samples: { events: number; heapMb: number; rssMb: number }[] = [];
  const sample = async (events: number) => samples.push({ events, heapMb: (await metric('nodejs_heap_size_used_bytes')) / 1_048_576, rssMb: memoryMb(serverPid, 'VmRSS') });
  await settle(500);
  await sample(0);
  const sent = new Map<string, number[]>();
  const addedCount = () => streams.slice(0, 5).reduce((a, s) => a + s.arrivals.length, 0);
  process.stdout.write(`(c) ${FLAT_EVENTS} events to 10 subscribers of one user `);
  for (let n = 0; n < FLAT_EVENTS; n += 50) {
    await Promise.all(Array.from({ length: 50 }, () => event(userId, sent)));
    if ((n + 50) % 1000 === 0) {
      await settle(200);
      await sample(n + 50);
      process.stdout.write('.');
    }
  }
  for (let i = 0; i < 100 && addedCount() < FLAT_EVENTS * 5; i++) await settle(100);
  await settle(500);
  const count = (await vendorCounts([userId])).get(userId);
  const countsRight = streams.slice(5).filter((s) => s.last === count).length;
  console.log(` ${addedCount()}/${FLAT_EVENTS * 5} notifications delivered, ${countsRight}/5 final counts right`);
  for (const s of streams) s.close();
  return { samples, delivered: addedCount(), expected: FLAT_EVENTS * 5, countsRight };
}

const perUser = await Promise.all(users.slice(0, USERS).map(async (u) => ({ userId: u, bearer: await token(u, false) })));
const a = await scenario(`(a) ${USERS} subscribers, one per user, ${RATE} events/s`, perUser, users.slice(0, USERS), RATE, SECONDS);
const watchers = await Promise.all(Array.from({ length: 100 }, async (_, i) => ({ userId: users[1000]!, bearer: await token(`watcher-${i}`, true) })));
const b = await scenario('(b) 100 subscribers to one user, 10 events/s', watchers, [users[1000]!], 10, SECONDS);
const flat = await flatMemory();

console.log(
  '\n| scenario | subscribers | events | notificationAdded delivered / expected | errors | p50 ms | p99 ms | final unreadCount right | p99 ms to final count | server RSS per subscriber (2 streams) | unread-count calls | ids per call | 429s from the vendor |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const o of [a, b]) {
  console.log(
    `| ${o.scenario} | ${o.subscribers} | ${o.events} | ${o.delivered} / ${o.expected} | ${o.errors} | ${o.p50.toFixed(1)} | ${o.p99.toFixed(1)} | ${o.countsRight} / ${o.subscribers} | ${o.countP99.toFixed(1)} | ${o.kbPerSubscriber.toFixed(1)} KB | ${o.unreadCalls} (${(o.unreadCalls / SECONDS).toFixed(1)}/s) | ${o.idsPerCall.toFixed(1)} | ${o.throttled} |`,
  );
}
console.log(`\n(c) ${flat.delivered} / ${flat.expected} notifications delivered, ${flat.countsRight} / 5 final counts right`);
console.log('\n| events sent to the 10 subscribers | ' + flat.samples.map((s) => s.events).join(' | ') + ' |');
console.log('|---|' + flat.samples.map(() => '---').join('|') + '|');
console.log('| server heap used (MB) | ' + flat.samples.map((s) => s.heapMb.toFixed(1)).join(' | ') + ' |');
console.log('| server RSS (MB) | ' + flat.samples.map((s) => s.rssMb.toFixed(1)).join(' | ') + ' |');
server.child.kill('SIGTERM');
upstreams.child.kill('SIGTERM');
process.exit(0);
