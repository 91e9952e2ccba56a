/**
 * A chaos run, as a deployment meets it: the built server (`start:prod`'s
 * flags, WORKERS=2) on the simulated vendors and its own Redis, a mixed load
 * (dashboards, lists, user pages, sendNotification and updateProfile with
 * keys, one caller per loop) while every few seconds one vendor takes a random
 * fault profile (errors, 429s, hangs, resets, stalls, trickles, latency, tight
 * limits, garbage, drift, gzip with a byte order mark, held writes, lagging
 * reads, oversized bodies) and Redis is frozen (SIGSTOP, 10 s), killed and
 * restarted, frozen again (5 s), and failed over to its replica. Then, the vendors well, every write that
 * did not answer COMPLETE or PARTIAL is repeated with its key by its caller,
 * as a client would, and each key is counted where it landed.
 *
 * Real time runs through it: subscribers over SSE (notificationAdded twice,
 * unreadCount and userUpdated for each of a few watched users, reconnecting
 * when a stream ends), the vendor's webhooks sent to the server twice under
 * one id, again under a new id, and out of order, and notifications made and
 * marked read at the vendor behind the server's back.
 *
 * Fails (exit 1) on: a 5xx other than 503, an error without a code, an
 * internal message, data and errors both missing, a notification written
 * other than once for a write that answered COMPLETE or PARTIAL (or more than
 * once for any), an audit event recorded more than once for a key, a
 * notification a subscriber connected throughout did not hear, or heard twice
 * outside a Redis outage, a subscriber's last unread count or profile that is
 * not the vendor's once all is delivered.
 *
 *   npm run build && npx tsx bench/chaos.ts     # CHAOS_MS (default 150,000), CHAOS_LOOPS (16), CHAOS_REDIS=0 to run without Redis
 *
 * What it found when it was written: bench/RESULTS.md, session 46.
 */
import { randomBytes } from 'node:crypto';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { Redis } from 'ioredis';
import { proxyTo, type RedisProxy } from '../test/helpers/redis-proxy.js';
import { coveredFrom, watch, type Watch, type WatchedField } from './chaos-watch.js';
import { identityToken, start, startProdNodeArgs, startUpstreams } from './harness.js';

type Json = Record<string, unknown>;
interface Answer {
  status: number;
  body: { data?: Json | null; errors?: { message: string; extensions?: { code?: string } }[]; transport?: string };
  ms: number;
}
interface Write {
  kind: 'send' | 'update';
  key: string;
  input: Json & { userId: string; title?: string };
  token: string;
  /** When it was first sent. */
  at: number;
  first: string;
  final?: string;
}

const DURATION_MS = Number(process.env.CHAOS_MS ?? 150_000);
const LOOPS = Number(process.env.CHAOS_LOOPS ?? 16);
const WITH_REDIS = process.env.CHAOS_REDIS !== '0';
const RUN = Date.now().toString(36);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pick = <T>(from: readonly T[]): T => from[Math.floor(Math.random() * from.length)]!;

const upstreams = await startUpstreams();
const vendors = {
  identity: upstreams.env.IDENTITY_URL!,
  analytics: upstreams.env.ANALYTICS_URL!,
  notifications: upstreams.env.NOTIFICATIONS_URL!,
  audit: upstreams.env.AUDIT_URL!,
};

/**
 * Two Redis servers, a primary and its replica, behind one address (a proxy), as a managed Redis has them: the
 * primary is frozen, killed and restarted, and frozen again, then fails over to the replica, the address moving to it
 * while connections already open stay on the old primary, now a replica of the new one.
 */
const redisPorts = ((first) => [first, first + 1])(16_000 + 2 * Math.floor(Math.random() * 2000));
const redisProcesses: (ChildProcess | undefined)[] = [undefined, undefined];
let primary = 0;
const redis = () => redisProcesses[primary]!;
/** When Redis was frozen or down (a restart counts until 3 s after it): a notification may be announced twice then, never lost. */
const redisTroubles: { from: number; to?: number }[] = [];
const redisDirs = [mkdtempSync(join(tmpdir(), 'chaos-redis-')), mkdtempSync(join(tmpdir(), 'chaos-redis-'))];
const startRedis = (i: number, replicaOf?: number) => {
  redisProcesses[i] = spawn(
    'redis-server',
    [
      ...['--port', String(redisPorts[i]), '--bind', '127.0.0.1', '--dir', redisDirs[i]!, '--save', '', '--appendonly', 'yes', '--repl-diskless-sync-delay', '0'],
      ...(replicaOf === undefined ? [] : ['--replicaof', '127.0.0.1', String(redisPorts[replicaOf])]),
    ],
    { stdio: 'ignore' },
  );
};
let redisAddress: RedisProxy | undefined;
if (WITH_REDIS) {
  execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
  startRedis(0);
  startRedis(1, 0);
  redisAddress = await proxyTo(redisPorts[0]!);
  await sleep(500);
}
process.on('exit', () => redisProcesses.forEach((p) => p?.kill('SIGKILL')));

/** The replica made the primary, the old primary its replica, and the address moved: a managed failover. */
async function failOver(): Promise<void> {
  const next = 1 - primary;
  const [promoted, demoted] = [new Redis(redisPorts[next]!), new Redis(redisPorts[primary]!)];
  // Planned, as managed failovers are: the replica has every write first (up to 3 s; replication is asynchronous).
  const offset = async (client: Redis, field: string) => Number(new RegExp(`${field}:(\\d+)`).exec(await client.info('replication'))?.[1] ?? -1);
  for (let i = 0; i < 30 && (await offset(promoted, 'slave_repl_offset')) < (await offset(demoted, 'master_repl_offset')); i++) await sleep(100);
  await promoted.call('REPLICAOF', 'NO', 'ONE');
  await demoted.call('REPLICAOF', '127.0.0.1', String(redisPorts[next]));
  redisAddress!.moveTo(redisPorts[next]!);
  primary = next;
  promoted.disconnect();
  demoted.disconnect();
}

const secret = randomBytes(32).toString('base64url');
const webhookSecret = `whsec_${randomBytes(24).toString('base64')}`;
const server = await start(
  'dist/main.js',
  {
    ...upstreams.env,
    PORT: '0',
    WORKERS: '2',
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    AUTH_JWT_SECRET: secret,
    NOTIFICATIONS_WEBHOOK_SECRET: webhookSecret,
    ...(WITH_REDIS ? { REDIS_URL: redisAddress!.url } : {}),
  },
  /GraphQL endpoint: /,
  startProdNodeArgs(),
);
const url = /GraphQL endpoint: (http:\/\/[^"\s]+)/.exec(server.output())![1]!;
const sign = (sub: string) => new SignJWT({ scope: 'admin' }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setExpirationTime('1h').sign(new TextEncoder().encode(secret));
const tokens = await Promise.all(Array.from({ length: LOOPS }, (_, i) => sign(`chaos-caller-${i}`)));

async function gql(query: string, variables: Json | undefined, token: string): Promise<Answer> {
  const started = Date.now();
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query, variables }),
      signal: AbortSignal.timeout(40_000),
    });
    const text = await res.text();
    let body: Answer['body'];
    try {
      body = JSON.parse(text) as Answer['body'];
    } catch {
      body = { transport: `not JSON: ${text.slice(0, 200)}` };
    }
    return { status: res.status, body, ms: Date.now() - started };
  } catch (e) {
    return { status: 0, body: { transport: String(e) }, ms: Date.now() - started };
  }
}
const admin = (vendor: keyof typeof vendors, method: string, body?: unknown) =>
  fetch(`${vendors[vendor]}/__admin/faults`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) }).catch(
    () => undefined,
  );

const listed = await gql('{ userList(first: 100) { edges { node { id } } } }', undefined, tokens[0]!);
const ids = ((listed.body.data!.userList as Json).edges as { node: { id: string } }[]).map((e) => e.node.id);
const watched = ids.slice(0, 6);
const vendorHeaders = {
  notifications: { authorization: `Bearer ${upstreams.env.NOTIFICATIONS_TOKEN!}`, 'content-type': 'application/json' },
};
// Twice under one id, again under a new id, out of order; retried long enough to outlast a Redis outage.
await fetch(`${vendors.notifications}/__admin/webhook`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({
    url: url.replace(/\/graphql$/, '/webhooks/notifications'),
    secret: webhookSecret,
    retryDelaysMs: [1000, 3000, 10_000, 30_000, 60_000],
    duplicateRate: 0.2,
    resignRate: 0.2,
    jitterMs: 2000,
  }),
});
const FIELDS: WatchedField[] = ['notificationAdded', 'notificationAdded', 'unreadCount', 'userUpdated'];
const watches: Watch[] = [];
for (const [u, user] of watched.entries()) {
  for (const [f, field] of FIELDS.entries()) watches.push(watch(url, await sign(`chaos-watcher-${u}-${f}`), user, field));
}
await sleep(1000);
const DASHBOARD = `query D($id: ID!) { user(id: $id) { id name avatarUrl metrics { pageViews sessions conversionRate } unreadNotificationCount notifications(first: 5) { totalCount edges { node { id title read createdAt } } } } }`;
const LIST = `query L($ids: [ID!]!) { users(ids: $ids) { name metrics { pageViews } unreadNotificationCount } }`;
const USER_LIST = `{ userList(first: 10) { totalCount edges { node { id name } } } }`;
const SEND = `mutation S($input: SendNotificationInput!) { sendNotification(input: $input) { status } }`;
const UPDATE = `mutation U($input: UpdateProfileInput!) { updateProfile(input: $input) { status } }`;
const UNREAD_IDS = `query R($id: ID!) { user(id: $id) { notifications(first: 3, unreadOnly: true) { edges { node { id } } } } }`;
const MARK_READ = `mutation M($u: ID!, $ids: [ID!]!) { markNotificationsRead(userId: $u, ids: $ids) { status } }`;
const PROFILES: Json[] = [
  { errorRate: 0.5 },
  { errorRate: 0.3, errorStatus: 500 },
  { errorRate: 1, errorStatus: 429 },
  { down: 'hang', downForMs: 3000 },
  { down: 'reset', downForMs: 3000 },
  { down: 'refuse', downForMs: 3000 },
  { down: 'stall', downForMs: 3000 },
  { down: 'trickle', downForMs: 3000 },
  { latencyMs: 2500, jitterMs: 2000 },
  { rateLimitPerSec: 5 },
  { malformedRate: 0.4 },
  { malformedRate: 0.4, malformedKind: 'shape' },
  { extraFields: true, jumbleLists: true },
  { contentEncoding: 'gzip', byteOrderMark: true },
  { retryAfterFraction: true, rateLimitPerSec: 3 },
  { writeHoldMs: 4000 },
  { readLagMs: 1500 },
  { errorBody: 'html', errorRate: 0.5, errorStatus: 502 },
  { padBodyBytes: 3_000_000 },
  { idleCloseMs: 1000 },
];

const tally = { requests: 0, statuses: {} as Record<string, number>, codes: {} as Record<string, number>, slowestMs: 0 };
const problems: string[] = [];
const writes: Write[] = [];
/** Notifications made at the vendor behind the server's back, by title. */
const madeAtVendor = new Map<string, { user: string; at: number; status: number }>();
const note = (r: Answer, kind: string) => {
  tally.requests++;
  tally.statuses[r.status] = (tally.statuses[r.status] ?? 0) + 1;
  tally.slowestMs = Math.max(tally.slowestMs, r.ms);
  for (const e of r.body.errors ?? []) {
    const code = e.extensions?.code ?? 'NONE';
    tally.codes[code] = (tally.codes[code] ?? 0) + 1;
    if (code === 'NONE') problems.push(`${kind}: an error without a code: ${e.message}`);
    if (/\bat .*\.js|TypeError|ReferenceError|Cannot read/.test(e.message)) problems.push(`${kind}: an internal message: ${e.message}`);
  }
  if (r.status >= 500 && r.status !== 503) problems.push(`${kind}: HTTP ${r.status}`);
  if (r.status === 200 && r.body.data == null && !(r.body.errors?.length ?? 0)) problems.push(`${kind}: neither data nor errors`);
};
const outcome = (kind: Write['kind'], r: Answer) =>
  (r.body.data?.[kind === 'send' ? 'sendNotification' : 'updateProfile'] as { status?: string } | undefined)?.status ?? `HTTP ${r.status}`;

let stop = false;
async function monkey(): Promise<void> {
  while (!stop) {
    const vendor = pick(Object.keys(vendors) as (keyof typeof vendors)[]);
    await admin(vendor, 'POST', pick(PROFILES));
    await sleep(2000 + Math.random() * 3000);
    await admin(vendor, 'DELETE');
    await sleep(Math.random() * 1500);
  }
}
async function redisTrouble(): Promise<void> {
  if (!WITH_REDIS) return;
  const troubleStarts = () => redisTroubles.push({ from: Date.now() });
  const troubleEnds = (after = 0) => (redisTroubles.at(-1)!.to = Date.now() + after);
  const steps: [number, () => unknown][] = [
    [30_000, () => (troubleStarts(), redis().kill('SIGSTOP'))],
    [10_000, () => (redis().kill('SIGCONT'), troubleEnds())],
    [30_000, () => (troubleStarts(), redis().kill('SIGKILL'))],
    [15_000, () => (startRedis(primary), troubleEnds(3000))],
    [25_000, () => (troubleStarts(), redis().kill('SIGSTOP'))],
    [5_000, () => (redis().kill('SIGCONT'), troubleEnds())],
    [20_000, async () => (troubleStarts(), await failOver(), troubleEnds(3000))],
  ];
  for (const [after, act] of steps) {
    await sleep(after);
    if (stop) return;
    await act();
  }
}
let seq = 0;
async function loop(token: string): Promise<void> {
  while (!stop) {
    const roll = Math.random();
    // Half the writes go to the watched users, so their subscribers hear plenty.
    const target = () => (Math.random() < 0.5 ? pick(watched) : pick(ids));
    if (roll < 0.48) note(await gql(DASHBOARD, { id: pick(ids) }, token), 'dashboard');
    else if (roll < 0.66) note(await gql(LIST, { ids: Array.from({ length: 10 }, () => pick(ids)) }, token), 'list');
    else if (roll < 0.73) note(await gql(USER_LIST, undefined, token), 'userList');
    else if (roll < 0.76) {
      const user = pick(watched);
      const unread = await gql(UNREAD_IDS, { id: user }, token);
      note(unread, 'unread ids');
      const edges = ((unread.body.data?.user as Json | null)?.notifications as { edges: { node: { id: string } }[] } | null)?.edges ?? [];
      if (edges.length > 0) note(await gql(MARK_READ, { u: user, ids: edges.map((e) => e.node.id) }, token), 'markNotificationsRead');
    } else if (roll < 0.79) {
      // Another app of the vendor's: the server hears of it by webhook only.
      const user = pick(watched);
      const title = `d chaos-${RUN}-${seq++}`;
      const at = Date.now();
      const res = await fetch(`${vendors.notifications}/v1/notifications`, {
        method: 'POST',
        headers: { ...vendorHeaders.notifications, 'idempotency-key': title },
        body: JSON.stringify({ user, title, body: 'behind the back', channel: 'push' }),
        signal: AbortSignal.timeout(10_000),
      }).catch(() => undefined);
      await res?.arrayBuffer().catch(() => undefined);
      madeAtVendor.set(title, { user, at, status: res?.status ?? 0 });
    } else {
      const kind = roll < 0.93 ? 'send' : 'update';
      const key = `chaos-${RUN}-${seq++}`;
      const input =
        kind === 'send'
          ? { userId: target(), title: `t ${key}`, body: 'chaos', channel: 'IN_APP', idempotencyKey: key }
          : { userId: target(), nickname: `n${seq}`, idempotencyKey: key };
      const at = Date.now();
      const r = await gql(kind === 'send' ? SEND : UPDATE, { input }, token);
      note(r, kind);
      writes.push({ kind, key, input, token, at, first: outcome(kind, r) });
    }
  }
}

const startedAt = Date.now();
console.log(
  `chaos: ${DURATION_MS / 1000} s, ${LOOPS} callers, WORKERS=2, ${WITH_REDIS ? `Redis on :${redisPorts.join(' and :')} behind :${redisAddress!.port} (frozen, killed, frozen, failed over)` : 'no Redis'}`,
);
const running = [monkey(), redisTrouble(), ...tokens.map(loop)];
await sleep(DURATION_MS);
stop = true;
await Promise.all(running);
for (const v of Object.keys(vendors) as (keyof typeof vendors)[]) await admin(v, 'DELETE');
if (WITH_REDIS) redis().kill('SIGCONT');
await sleep(5000);

const landed = (w: Write) => w.final === 'COMPLETE' || w.final === 'PARTIAL';
for (const w of writes) {
  if (w.first === 'COMPLETE' || w.first === 'PARTIAL') w.final = w.first;
  else {
    const r = await gql(w.kind === 'send' ? SEND : UPDATE, { input: w.input }, w.token);
    note(r, `repeated ${w.kind}`);
    w.final = outcome(w.kind, r);
  }
}
const outcomes: Record<string, number> = {};
for (const w of writes) outcomes[`${w.kind} ${w.first} → ${w.final}`] = (outcomes[`${w.kind} ${w.first} → ${w.final}`] ?? 0) + 1;

async function auditCounts(): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const user of new Set(writes.map((w) => w.input.userId))) {
    const res = await fetch(`${vendors.audit}/v1/events?target=${encodeURIComponent(user)}&limit=1000`, { headers: { 'x-api-key': upstreams.env.AUDIT_API_KEY! } });
    for (const e of ((await res.json()) as { data: { details?: { idempotencyKey?: string } }[] }).data) {
      const key = e.details?.idempotencyKey;
      if (key?.startsWith(`chaos-${RUN}`)) counts[key] = (counts[key] ?? 0) + 1;
    }
  }
  return counts;
}
// Queued deliveries drain with backoff: wait for every landed write's event.
let audit = await auditCounts();
for (let waited = 0; waited < 90_000 && writes.some((w) => landed(w) && audit[w.key] !== 1); waited += 5000) {
  await sleep(5000);
  audit = await auditCounts();
}
for (const w of writes) {
  const n = audit[w.key] ?? 0;
  if (n > 1 || (landed(w) && n !== 1)) problems.push(`${w.key} (${w.kind} ${w.first} → ${w.final}): ${n} audit events`);
}
const titles: Record<string, number> = {};
for (const user of new Set([...watched, ...writes.filter((w) => w.kind === 'send').map((w) => w.input.userId)])) {
  for (let page = 1; ; page++) {
    const res = await fetch(`${vendors.notifications}/v1/users/${encodeURIComponent(user)}/notifications?per_page=100&page=${page}`, {
      headers: { authorization: `Bearer ${upstreams.env.NOTIFICATIONS_TOKEN!}` },
    });
    const list = (await res.json()) as { title: string }[];
    for (const n of list) if (/^[td] chaos-/.test(n.title) && n.title.includes(RUN)) titles[n.title] = (titles[n.title] ?? 0) + 1;
    if (list.length < 100) break;
  }
}
for (const w of writes.filter((x) => x.kind === 'send')) {
  const n = titles[w.input.title!] ?? 0;
  if (n > 1 || (landed(w) && n !== 1)) problems.push(`${w.key} (send ${w.first} → ${w.final}): ${n} notifications at the vendor`);
}
for (const [title, m] of madeAtVendor) if ((titles[title] ?? 0) > 1) problems.push(`${title} (made at the vendor, ${m.status}): ${titles[title]} notifications`);

// Real time, once the vendor delivered or dropped every webhook and the change feed had time to pass.
const webhookStats = async () => (await (await fetch(`${vendors.notifications}/__admin/webhook`)).json()) as Record<string, number>;
for (let waited = 0; waited < 120_000 && (await webhookStats()).pending! > 0; waited += 2000) await sleep(2000);
await sleep(8000);
// The titles of the notifications the server announced (Redis's live stream keeps the whole run): a miss of one
// announced is the subscriber's side (reading, delivery), of one not announced the webhook's (processing, publishing).
const announcedInStream = new Set<string>();
if (WITH_REDIS) {
  const client = new Redis(redisPorts[primary]!);
  for (const [, fields] of await client.xrange('{gw:live}:events', '-', '+')) {
    if (!fields[1]?.includes(':notificationAdded:')) continue;
    const title = (JSON.parse(fields[3] ?? '{}') as { title?: string }).title;
    if (title) announcedInStream.add(title);
  }
  client.disconnect();
}
await Promise.all(watches.map((w) => w.stop()));
const hooks = await webhookStats();
const troubleNear = (at: number) => redisTroubles.some((t) => at >= t.from && at <= (t.to ?? Infinity) + 5000);
const missedBy: Record<string, { missed: number; inStream: number; firstAtS: number; lastAtS: number }> = {};
const realtime = { announced: 0, heardByWatchers: 0, missed: 0, twiceNearOutage: 0, streamEnds: {} as Record<string, number>, refused: {} as Record<string, number> };
const asked = new Map<string, { user: string; at: number }>();
for (const w of writes) if (w.kind === 'send' && watched.includes(w.input.userId)) asked.set(w.input.title!, { user: w.input.userId, at: w.at });
for (const [title, m] of madeAtVendor) asked.set(title, m);
for (const [title, { user, at }] of asked) {
  if ((titles[title] ?? 0) !== 1) continue;
  realtime.announced++;
  for (const w of watches.filter((x) => x.field === 'notificationAdded' && x.user === user)) {
    const heard = w.heard.filter((h) => (h.value as { title?: string } | null)?.title === title);
    if (heard.length === 0 && coveredFrom(w, at - 1000)) {
      realtime.missed++;
      const m = (missedBy[`subscriber ${watches.indexOf(w)} to ${user}`] ??= { missed: 0, inStream: 0, firstAtS: Infinity, lastAtS: 0 });
      m.missed++;
      if (announcedInStream.has(title)) m.inStream++;
      m.firstAtS = Math.min(m.firstAtS, Math.round((at - startedAt) / 1000));
      m.lastAtS = Math.max(m.lastAtS, Math.round((at - startedAt) / 1000));
    }
    if (heard.length > 0) realtime.heardByWatchers++;
    if (heard.length > 1 && (troubleNear(at) || heard.some((h) => troubleNear(h.at)))) realtime.twiceNearOutage++;
    else if (heard.length > 1) problems.push(`notificationAdded: ${title} heard ${heard.length} times by one subscriber to ${user}, Redis well`);
  }
}
for (const [who, m] of Object.entries(missedBy)) {
  const w = watches[Number(who.split(' ')[1])]!;
  const where = WITH_REDIS ? `; announced in Redis's live stream: ${m.inStream} of them` : '';
  problems.push(
    `notificationAdded: ${who}, connected throughout, missed ${m.missed} notifications made from ${m.firstAtS} s to ${m.lastAtS} s (heard ${w.heard.length} events and ${w.keepAlives} keep-alives${where})`,
  );
}
const counts = (await (
  await fetch(`${vendors.notifications}/v1/unread-counts?user_ids=${watched.map(encodeURIComponent).join(',')}`, { headers: vendorHeaders.notifications })
).json()) as { counts: Record<string, number> };
const vendorToken = await identityToken(upstreams.env);
for (const w of watches) {
  for (const span of w.spans) if (span.why !== 'stopped') realtime.streamEnds[span.why ?? 'open'] = (realtime.streamEnds[span.why ?? 'open'] ?? 0) + 1;
  for (const r of w.refused) realtime.refused[r.slice(0, 80)] = (realtime.refused[r.slice(0, 80)] ?? 0) + 1;
  const last = w.heard.at(-1);
  const describe = (h: typeof last) => (h ? `${JSON.stringify(h.value)}${h.errors.length ? ` with ${h.errors.join('; ')}` : ''}` : 'nothing');
  if (w.field === 'unreadCount' && last?.value !== counts.counts[w.user]) {
    problems.push(`unreadCount: the last count a subscriber to ${w.user} heard was ${describe(last)}; the vendor's is ${counts.counts[w.user]}`);
  }
  if (w.field === 'userUpdated' && writes.some((x) => x.kind === 'update' && x.input.userId === w.user)) {
    const res = await fetch(`${vendors.identity}/api/v2/users/${encodeURIComponent(w.user)}`, { headers: { authorization: `Bearer ${vendorToken}` } });
    const nickname = ((await res.json()) as { nickname?: string }).nickname;
    if ((last?.value as { nickname?: string } | null | undefined)?.nickname !== nickname) {
      problems.push(`userUpdated: the last profile a subscriber to ${w.user} heard was ${describe(last)}; the vendor's nickname is ${nickname}`);
    }
  }
}

/** Log lines at a level, counted by message (numbers in it blurred, so one kind counts as one). */
const linesAt = (level: number) => {
  const counted: Record<string, number> = {};
  for (const line of server.output().split('\n')) {
    if (!line.includes(`"level":${level}`)) continue;
    const message = (/"msg":"([^"]*)"/.exec(line)?.[1] ?? line.slice(0, 200)).replace(/\d+/g, 'N');
    counted[message] = (counted[message] ?? 0) + 1;
  }
  return counted;
};
const errorsByMessage = linesAt(50);

console.log(`${tally.requests} requests, slowest ${tally.slowestMs} ms; HTTP`, tally.statuses, '; error codes', tally.codes);
console.log(`${writes.length} writes:`, outcomes);
console.log(
  'Redis trouble (s from the start):',
  redisTroubles.map((t) => `${Math.round((t.from - startedAt) / 1000)}–${t.to === undefined ? '?' : Math.round((t.to - startedAt) / 1000)}`),
);
console.log(`real time: ${watches.length} subscribers to ${watched.length} users; webhooks`, hooks, '; notifications', realtime);
const idleClosed: Record<string, number> = {};
for (const [vendor, base] of Object.entries(vendors)) {
  idleClosed[vendor] = ((await (await fetch(`${base}/__admin/stats`)).json()) as { idleClosed?: number }).idleClosed ?? 0;
}
console.log('idle connections the vendors closed under a call (idleCloseMs; each sent again at once):', idleClosed);
console.log('warn-level log lines:', linesAt(40));
console.log('error-level log lines:', errorsByMessage);
console.log(problems.length === 0 ? 'no problems' : `${problems.length} problems:\n  ${problems.slice(0, 20).join('\n  ')}`);
server.child.kill('SIGTERM');
upstreams.child.kill('SIGTERM');
redisProcesses.forEach((p) => p?.kill('SIGKILL'));
await redisAddress?.close();
process.exit(problems.length === 0 ? 0 : 1);
