import { describe, expect, it } from 'vitest';
import { LoadShedder } from '../src/http/load-shedding.js';
import { calls, READ_ROUTES, stackPool } from './helpers/stack.js';

/**
 * Past capacity the server refuses new GraphQL requests with 503, Retry-After
 * and OVERLOADED instead of slowing every request down or running out of
 * memory. The in-flight bound is shown on a real server (refusals counted on
 * /metrics, upstream calls off the vendors' stats); the loop-delay and heap
 * readings on the shedder itself, with a loop really blocked.
 */
const stackWith = stackPool();

const block = (ms: number) => {
  const until = performance.now() + ms;
  while (performance.now() < until);
};

describe('load shedding', () => {
  it('past LOAD_SHED_MAX_IN_FLIGHT, new requests get 503 with Retry-After and OVERLOADED, reach no vendor, and are admitted again after', async () => {
    const origin = 'https://app.example.com';
    const stack = await stackWith({
      ops: (o) => ({ ...o, corsOrigins: [origin], loadShedding: { maxInFlight: 3, maxEntityReads: 0, maxEventLoopDelayMs: 0, maxHeapUsedRatio: 0 } }),
    });
    await stack.faults('analytics', { latencyMs: 400 });
    const query = `query($id: ID!) { user(id: $id) { name metrics { pageViews } } }`;
    const answers = await Promise.all(
      Array.from({ length: 3 }, (_, i) => stack.gql(query, { id: stack.userId(i + 1) })).concat(
        // Sent once the first three are in flight.
        Array.from({ length: 4 }, (_, i) => new Promise((r) => setTimeout(r, 150)).then(() => stack.gql(query, { id: stack.userId(i + 10) }, { headers: { origin } }))),
      ),
    );
    const statuses = answers.map((a) => a.status);
    expect(statuses.slice(0, 3)).toEqual([200, 200, 200]);
    expect(statuses.slice(3)).toEqual([503, 503, 503, 503]);
    const refused = answers[3]!;
    expect(refused.headers.get('retry-after')).toBe('1');
    // A browser on an allowed origin sees the 503 itself, not a CORS error.
    expect(refused.headers.get('access-control-allow-origin')).toBe(origin);
    expect(refused.body.errors?.[0]?.extensions).toMatchObject({ code: 'OVERLOADED', reason: 'in_flight', retryAfterSeconds: 1 });
    // Only the three admitted reached the vendors (no cache here: one profile and one metrics call each).
    expect(calls(await stack.stats('identity'), READ_ROUTES.search)).toBe(3);
    expect((await stack.stats('analytics')).totalCalls).toBe(3);
    const metrics = await (await fetch(stack.url.replace('/graphql', '/metrics'))).text();
    expect(metrics).toMatch(/gateway_requests_shed_total\{reason="in_flight"\} 4/);
    // The count went down as they finished: a new request is admitted.
    expect((await stack.gql(query, { id: stack.userId(20) })).status).toBe(200);
    // Health and metrics are never refused.
    expect((await fetch(stack.url.replace('/graphql', '/healthz'))).status).toBe(200);
    expect(stack.logs.some((l) => l.includes('Over capacity: new GraphQL requests get 503'))).toBe(true);
  });

  it('a subscription over SSE does not count as a request in flight while it stays open', async () => {
    const stack = await stackWith({ ops: (o) => ({ ...o, loadShedding: { maxInFlight: 1, maxEntityReads: 0, maxEventLoopDelayMs: 0, maxHeapUsedRatio: 0 } }) });
    const user = stack.userId(5);
    const controller = new AbortController();
    const stream = await fetch(stack.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${await stack.token({ sub: user, admin: false })}` },
      body: JSON.stringify({ query: `subscription($u: ID!) { unreadCount(userId: $u) }`, variables: { u: user } }),
      signal: controller.signal,
    });
    try {
      expect(stream.headers.get('content-type')).toContain('text/event-stream');
      expect((await stack.gql(`query($id: ID!) { user(id: $id) { name } }`, { id: user })).status).toBe(200);
    } finally {
      controller.abort();
    }
  });

  it('past LOAD_SHED_MAX_ENTITY_READS entity reads by the requests in progress, new requests get 503 whatever their size; the admitted ones finish', async () => {
    const stack = await stackWith({
      cache: { enabled: true },
      ops: (o) => ({ ...o, loadShedding: { maxInFlight: 0, maxEntityReads: 250, maxEventLoopDelayMs: 0, maxHeapUsedRatio: 0 } }),
    });
    await stack.faults('analytics', { latencyMs: 400 });
    const list = `query($ids: [ID!]!) { users(ids: $ids) { name metrics { pageViews } } }`;
    const big = stack.gql<{ users: { name: string | null }[] }>(list, { ids: Array.from({ length: 150 }, (_, i) => stack.userId(i + 1)) });
    await new Promise((r) => setTimeout(r, 150)); // 300 reads made (profiles and metrics), the metrics still waiting for analytics
    const small = await stack.gql(`query($id: ID!) { user(id: $id) { name } }`, { id: stack.userId(300) });
    expect(small.status).toBe(503);
    expect(small.body.errors?.[0]?.extensions).toMatchObject({ code: 'OVERLOADED', reason: 'entity_reads' });
    const done = await big;
    expect(done.status).toBe(200);
    expect(done.body.errors).toBeUndefined();
    expect(done.body.data?.users.filter((u) => u.name !== null)).toHaveLength(150);
    // Once the queue drained, requests are admitted again.
    expect((await stack.gql(`query($id: ID!) { user(id: $id) { name } }`, { id: stack.userId(300) })).status).toBe(200);
  });

  it('a client that hangs up mid-request gives its entity reads back: the count never leaks into refusing everyone', async () => {
    const stack = await stackWith({
      cache: { enabled: true },
      ops: (o) => ({ ...o, loadShedding: { maxInFlight: 0, maxEntityReads: 250, maxEventLoopDelayMs: 0, maxHeapUsedRatio: 0 } }),
    });
    await stack.faults('analytics', { latencyMs: 1500 });
    const controller = new AbortController();
    const abandoned = fetch(stack.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await stack.token()}` },
      body: JSON.stringify({
        query: `query($ids: [ID!]!) { users(ids: $ids) { name metrics { pageViews } } }`,
        variables: { ids: Array.from({ length: 150 }, (_, i) => stack.userId(i + 400)) },
      }),
      signal: controller.signal,
    }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 200));
    expect((await stack.gql(`query($id: ID!) { user(id: $id) { name } }`, { id: stack.userId(600) })).status).toBe(503);
    controller.abort();
    await abandoned;
    await new Promise((r) => setTimeout(r, 100));
    // Well before analytics answers the abandoned request, its reads no longer count.
    expect((await stack.gql(`query($id: ID!) { user(id: $id) { name } }`, { id: stack.userId(601) })).status).toBe(200);
  });

  it('an event loop behind in two readings running turns refusals on, one long task does not, and they stop once it keeps up', async () => {
    const transitions: (string | null)[] = [];
    const shedder = new LoadShedder(
      { maxInFlight: 0, maxEntityReads: 0, maxEventLoopDelayMs: 100, maxHeapUsedRatio: 0 },
      { onPressure: (reason) => transitions.push(reason), sampleEveryMs: 0 },
    );
    const behind = async () => {
      for (let i = 0; i < 4; i++) {
        block(250);
        await new Promise((r) => setTimeout(r, 5));
      }
      shedder.sample();
    };
    try {
      shedder.sample();
      await behind();
      expect(shedder.last.eventLoopDelayP99Ms).toBeGreaterThan(100);
      // One reading behind: a long task, not yet overload.
      expect(shedder.refuses()).toBeNull();
      await behind();
      expect(shedder.refuses()).toBe('event_loop_delay');
      await new Promise((r) => setTimeout(r, 300));
      shedder.sample();
      expect(shedder.refuses()).toBeNull();
      expect(transitions).toEqual(['event_loop_delay', null]);
    } finally {
      shedder.close();
    }
  });

  it('a heap past its share of the limit turns refusals on', () => {
    const tight = new LoadShedder({ maxInFlight: 0, maxEntityReads: 0, maxEventLoopDelayMs: 0, maxHeapUsedRatio: 0.0001 });
    const roomy = new LoadShedder({ maxInFlight: 0, maxEntityReads: 0, maxEventLoopDelayMs: 0, maxHeapUsedRatio: 0.99 });
    try {
      tight.sample();
      roomy.sample();
      expect(tight.refuses()).toBe('heap');
      expect(roomy.refuses()).toBeNull();
      expect(roomy.last.heapUsedRatio).toBeGreaterThan(0);
    } finally {
      tight.close();
      roomy.close();
    }
  });
});
