import { describe, expect, it } from 'vitest';
import { offsetCursor } from '../src/resolvers/cursors.js';
import { readParts, type Part } from './helpers/multipart.js';
import { everyEntity, stackPool, type Stack } from './helpers/stack.js';

/**
 * @defer and @stream (graphql-yoga's plugin, graphql-js's executor for these
 * documents): the fast vendors' fields in the first part, the slow one's in a
 * later part of the same response, with its typed error, stale marks, the
 * request's deadline and its log line covering the later parts too.
 */
const stackWith = stackPool((o) => ({ cache: { enabled: true }, ...o }));

const DEFERRED = `query DeferredDashboard($u: ID!) {
  user(id: $u) {
    name
    unreadNotificationCount
    ... @defer(label: "metrics") { metrics { pageViews sessions } }
  }
}`;

async function deferred(stack: Stack, query: string, variables: Record<string, unknown>): Promise<{ parts: Part[]; requestId: string | null }> {
  const startedAt = Date.now();
  const res = await fetch(stack.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'multipart/mixed', authorization: `Bearer ${await stack.token()}` },
    body: JSON.stringify({ query, variables }),
  });
  expect(res.status).toBe(200);
  return { requestId: res.headers.get('x-request-id'), parts: await readParts(res, startedAt) };
}

describe('incremental delivery', () => {
  it('with analytics at 1 s, the profile and counts arrive in under 400 ms and the metrics follow in the same response', async () => {
    const stack = await stackWith();
    await stack.faults('analytics', { latencyMs: 1000 });
    const user = stack.userId(80);
    const { parts } = await deferred(stack, DEFERRED, { u: user });
    expect(parts).toHaveLength(2);
    const [first, second] = parts as [Part, Part];
    // Well before analytics' second (a first part took 212 ms once with the suite's other files on the same two cores).
    expect(first.at).toBeLessThan(400);
    expect(first.body).toEqual({ data: { user: { name: expect.any(String), unreadNotificationCount: expect.any(Number) } }, hasNext: true });
    expect(second.at).toBeGreaterThanOrEqual(900);
    expect(second.body).toEqual({
      incremental: [{ data: { metrics: { pageViews: expect.any(Number), sessions: expect.any(Number) } }, path: ['user'], label: 'metrics' }],
      hasNext: false,
    });
    console.log(`first part ${first.at} ms, deferred metrics ${second.at} ms (analytics at 1 s)`);
  });

  it('a failing deferred source: its typed error in its own part, one warn line and a request line that count it', async () => {
    const stack = await stackWith();
    await stack.faults('analytics', { errorRate: 1, errorStatus: 503 });
    const { parts, requestId } = await deferred(stack, DEFERRED, { u: stack.userId(81) });
    expect(parts[0]!.body.errors).toBeUndefined();
    expect(parts[0]!.body.data.user.name).toEqual(expect.any(String));
    const later = parts.slice(1).flatMap((p) => p.body.incremental ?? []);
    expect(later).toHaveLength(1);
    expect(later[0].data).toEqual({ metrics: null });
    expect(later[0].errors).toEqual([
      expect.objectContaining({ path: ['user', 'metrics'], extensions: expect.objectContaining({ code: 'SOURCE_UNAVAILABLE', source: 'analytics' }) }),
    ]);
    // The log line is written after the last part: wait for it.
    await new Promise((r) => setTimeout(r, 50));
    const lines = stack.logs.filter((l) => l.includes(requestId!));
    expect(lines.filter((l) => l.includes('"msg":"request"') && l.includes('"errors":1') && l.includes('"incremental":true'))).toHaveLength(1);
    expect(lines.filter((l) => l.includes('"level":40') && l.includes('"source":"analytics"'))).toHaveLength(1);
  });

  it('stale data in a later part carries its stale mark in that part', async () => {
    const stack = await stackWith({ cache: { enabled: true, entities: everyEntity({ ttlMs: 100, staleWhileRevalidateMs: 0, staleIfErrorMs: 600_000 }) } });
    const user = stack.userId(82);
    await stack.gql(DEFERRED.replace(' @defer(label: "metrics")', ''), { u: user });
    await new Promise((r) => setTimeout(r, 150));
    await stack.faults('analytics', { errorRate: 1, errorStatus: 503 });
    const { parts } = await deferred(stack, DEFERRED, { u: user });
    const last = parts.at(-1)!.body;
    expect(last.incremental[0].data.metrics).toEqual({ pageViews: expect.any(Number), sessions: expect.any(Number) });
    expect(last.extensions?.stale).toEqual([expect.objectContaining({ path: ['user', 'metrics'], source: 'analytics', reason: 'SOURCE_ERROR' })]);
    expect(parts[0]!.body.extensions?.stale ?? []).not.toContainEqual(expect.objectContaining({ source: 'analytics' }));
  });

  it('the request deadline covers the later parts: a deferred vendor slower than it answers SOURCE_TIMEOUT at the deadline', async () => {
    const stack = await stackWith({ requestDeadlineMs: 600 });
    await stack.faults('analytics', { latencyMs: 3000 });
    const { parts } = await deferred(stack, DEFERRED, { u: stack.userId(83) });
    const last = parts.at(-1)!;
    expect(last.body.incremental?.[0]?.errors?.[0]?.extensions?.code, JSON.stringify(parts)).toBe('SOURCE_TIMEOUT');
    expect(last.at).toBeLessThan(1500);
  });

  it("@defer in a list's nodes: the page and the counts in the first part, the slow vendor's metrics in later ones", async () => {
    const stack = await stackWith();
    await stack.faults('analytics', { latencyMs: 1000 });
    const list = `{ userList(first: 3, after: "${offsetCursor('users', 40)}") { edges { node { id unreadNotificationCount ... @defer { metrics { pageViews } } } } } }`;
    const { parts } = await deferred(stack, list, {});
    const first = parts[0]!;
    expect(first.body.data.userList.edges).toEqual(Array.from({ length: 3 }, () => ({ node: { id: expect.any(String), unreadNotificationCount: expect.any(Number) } })));
    expect(first.at).toBeLessThan(500);
    const later = parts.slice(1).flatMap((p) => p.body.incremental ?? []);
    expect(later.map((i: { data: unknown }) => i.data)).toEqual(Array.from({ length: 3 }, () => ({ metrics: { pageViews: expect.any(Number) } })));
    expect(parts.at(-1)!.at).toBeGreaterThanOrEqual(900);
  });

  it('@stream: a list arrives item by item after its initial count, in one response', async () => {
    const stack = await stackWith();
    const { parts } = await deferred(stack, `{ userList(first: 4) { edges @stream(initialCount: 1) { node { id } } } }`, {});
    expect(parts.length).toBeGreaterThanOrEqual(2);
    expect(parts[0]!.body.data.userList.edges).toHaveLength(1);
    const streamed = parts.slice(1).flatMap((p) => (p.body.incremental ?? []).flatMap((i: { items?: unknown[] }) => i.items ?? []));
    expect(streamed).toHaveLength(3);
    expect(parts.at(-1)!.body.hasNext).toBe(false);
  });
});
