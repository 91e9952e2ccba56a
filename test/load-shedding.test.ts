import { describe, expect, it } from 'vitest';
import { LoadShedder } from '../src/http/load-shedding.js';
import { calls, READ_ROUTES, stackPool, type Stack } from './helpers/stack.js';

/**
 * Past capacity the server refuses new GraphQL requests with 503, Retry-After
 * and OVERLOADED instead of slowing every request down or running out of
 * memory. The in-flight bound is shown on a real server (refusals counted on
 * /metrics, upstream calls off the vendors' stats); the loop-delay and heap
 * readings on the shedder itself, with a loop really blocked.
 */
const stackWith = stackPool();
/** Stacks that have not answered a request yet: a process just started. */
const freshStackWith = stackPool(undefined, { warm: false });

const LIST = `query($ids: [ID!]!) { users(ids: $ids) { name metrics { pageViews } unreadNotificationCount } }`;
const metricsText = async (stack: Stack) => (await fetch(stack.url.replace('/graphql', '/metrics'))).text();
const entityReadsInFlight = async (stack: Stack) => /^gateway_entity_reads_in_flight (\d+)$/m.exec(await metricsText(stack))?.[1];

/** A query whose client will hang up: `hangUp()` aborts it and says whether it had an answer by then. */
async function sentByImpatientClient(stack: Stack, query: string, variables: Record<string, unknown>) {
  const controller = new AbortController();
  const answered = fetch(stack.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${await stack.token()}` },
    body: JSON.stringify({ query, variables }),
    signal: controller.signal,
  }).then(
    () => true,
    () => false,
  );
  return {
    hangUp: () => {
      controller.abort();
      return answered;
    },
  };
}

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
    const metrics = await metricsText(stack);
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
    const client = await sentByImpatientClient(stack, `query($ids: [ID!]!) { users(ids: $ids) { name metrics { pageViews } } }`, {
      ids: Array.from({ length: 150 }, (_, i) => stack.userId(i + 400)),
    });
    await new Promise((r) => setTimeout(r, 200));
    expect((await stack.gql(`query($id: ID!) { user(id: $id) { name } }`, { id: stack.userId(600) })).status).toBe(503);
    await client.hangUp();
    await new Promise((r) => setTimeout(r, 100));
    // Well before analytics answers the abandoned request, its reads no longer count.
    expect((await stack.gql(`query($id: ID!) { user(id: $id) { name } }`, { id: stack.userId(601) })).status).toBe(200);
  });

  it('a request in progress counts the reads docs/operations.md sizes the budgets by: 7 a dashboard, 250 a 50-user list of three fields', async () => {
    const stack = await stackWith({ cache: { enabled: true } });
    await stack.faults('analytics', { latencyMs: 600 });
    const DASHBOARD = `query($id: ID!) { user(id: $id) { id name avatarUrl metrics { pageViews } unreadNotificationCount notifications(first: 5) { totalCount } } }`;
    const list = stack.gql(LIST, { ids: Array.from({ length: 50 }, (_, i) => stack.userId(i + 100)) });
    await new Promise((r) => setTimeout(r, 300));
    expect(await entityReadsInFlight(stack)).toBe('250');
    expect((await list).status).toBe(200);
    const dashboard = stack.gql(DASHBOARD, { id: stack.userId(300) });
    await new Promise((r) => setTimeout(r, 300));
    expect(await entityReadsInFlight(stack)).toBe('7');
    expect((await dashboard).status).toBe(200);
    expect(await entityReadsInFlight(stack)).toBe('0');
  });

  it('a request whose client hung up counts none of the reads its execution makes afterwards: a slow vendor and impatient clients never leave the count stuck', async () => {
    const stack = await stackWith({
      cache: { enabled: true },
      ops: (o) => ({ ...o, loadShedding: { maxInFlight: 0, maxEntityReads: 150, maxEventLoopDelayMs: 0, maxHeapUsedRatio: 0 } }),
    });
    // Identity answers after the clients have gone; only then do the users' metrics and unread-count fields load.
    await stack.faults('identity', { latencyMs: 800 });
    const client = await sentByImpatientClient(stack, LIST, { ids: Array.from({ length: 100 }, (_, i) => stack.userId(i + 300)) });
    await new Promise((r) => setTimeout(r, 200));
    expect(await client.hangUp()).toBe(false);
    await stack.faults('identity', {});
    // Past identity's answer to the abandoned list: its fields have loaded (both vendors called for it) and are done.
    await new Promise((r) => setTimeout(r, 1200));
    expect((await stack.stats('analytics')).totalCalls).toBeGreaterThan(0);
    expect(await entityReadsInFlight(stack)).toBe('0');
    expect((await stack.gql(`query($id: ID!) { user(id: $id) { name } }`, { id: stack.userId(700) })).status).toBe(200);
  });

  describe('the admission queue (LOAD_QUEUE_AT_ENTITY_READS)', () => {
    const ids = (stack: Stack, from: number) => Array.from({ length: 50 }, (_, i) => stack.userId(from + i));
    /** A stack whose line holds one 50-user list at a time (150 reads, against a budget of 100), learned from a first list. */
    const withLine = async (admission: { queueAtEntityReads: number; maxWaitMs: number }) => {
      const stack = await stackWith({ ops: (o) => ({ ...o, admission }) });
      expect((await stack.gql(LIST, { ids: ids(stack, 1) })).status).toBe(200);
      await stack.reset();
      return stack;
    };

    it('past it, requests wait in line and run as others finish, first come first served; all are answered', async () => {
      const stack = await withLine({ queueAtEntityReads: 100, maxWaitMs: 10_000 });
      await stack.faults('analytics', { latencyMs: 400 });
      const answers = Promise.all([100, 200, 300].map((from) => stack.gql<{ users: { name: string | null }[] }>(LIST, { ids: ids(stack, from) })));
      await new Promise((r) => setTimeout(r, 200));
      // The first list waits on analytics; the other two have not started, so identity has seen only its 50 ids
      // (without the line all three searches go out at once).
      expect((await stack.stats('identity')).routes[READ_ROUTES.search]?.batchSizes).toEqual([50]);
      expect(await metricsText(stack)).toMatch(/gateway_admission_queue_requests\{state="waiting"\} 2/);
      const done = await answers;
      expect(done.map((a) => a.status)).toEqual([200, 200, 200]);
      expect(done.map((a) => a.body.data?.users.filter((u) => u.name !== null).length)).toEqual([50, 50, 50]);
      const search = (await stack.stats('identity')).routes[READ_ROUTES.search]?.recent ?? [];
      expect(search.map((q) => (decodeURIComponent(q).includes(stack.userId(100)) ? 1 : decodeURIComponent(q).includes(stack.userId(200)) ? 2 : 3))).toEqual([1, 2, 3]);
      const metrics = await metricsText(stack);
      expect(metrics).toMatch(/gateway_admission_queue_wait_seconds_count 2/);
      expect(metrics).toMatch(/gateway_admission_queue_requests\{state="waiting"\} 0/);
    });

    it('a request that waits LOAD_QUEUE_MAX_WAIT_MS gets 503 OVERLOADED (queue_wait) with Retry-After and reaches no vendor', async () => {
      const stack = await withLine({ queueAtEntityReads: 100, maxWaitMs: 150 });
      await stack.faults('analytics', { latencyMs: 600 });
      const first = stack.gql(LIST, { ids: ids(stack, 100) });
      await new Promise((r) => setTimeout(r, 50));
      const second = await stack.gql(LIST, { ids: ids(stack, 200) });
      expect(second.status).toBe(503);
      expect(second.headers.get('retry-after')).toBe('1');
      expect(second.body.errors?.[0]?.extensions).toMatchObject({ code: 'OVERLOADED', reason: 'queue_wait' });
      expect((await first).status).toBe(200);
      // Only the first list's 50 users were asked of identity.
      expect((await stack.stats('identity')).routes[READ_ROUTES.search]?.batchSizes).toEqual([50]);
      expect(await metricsText(stack)).toMatch(/gateway_requests_shed_total\{reason="queue_wait"\} 1/);
      expect(stack.logs.filter((l) => l.includes('Over capacity: new GraphQL requests get 503') && l.includes('queue_wait'))).toHaveLength(1);
      // The line is free again.
      expect((await stack.gql(LIST, { ids: ids(stack, 300) })).status).toBe(200);
    });

    it('a process that has answered nothing yet lets a waiter in when its wait runs out rather than refuse it: a restart while a vendor stalls', async () => {
      // Before a request has finished, the line runs one at a time; the first here waits 600 ms on analytics.
      const stack = await freshStackWith({ ops: (o) => ({ ...o, admission: { queueAtEntityReads: 100, maxWaitMs: 150 } }) });
      await stack.faults('analytics', { latencyMs: 600 });
      const done = await Promise.all([100, 200, 300].map((from) => stack.gql<{ users: { name: string | null }[] }>(LIST, { ids: ids(stack, from) })));
      expect(done.map((a) => a.status)).toEqual([200, 200, 200]);
      expect(done.map((a) => a.body.data?.users.filter((u) => u.name !== null).length)).toEqual([50, 50, 50]);
      const metrics = await metricsText(stack);
      expect(metrics).toMatch(/gateway_admission_queue_wait_seconds_count 2/);
      expect(metrics).not.toMatch(/gateway_requests_shed_total\{reason="queue_wait"\} [1-9]/);
    });

    it('a client that hangs up while in line leaves it: its request never runs', async () => {
      const stack = await withLine({ queueAtEntityReads: 100, maxWaitMs: 10_000 });
      await stack.faults('analytics', { latencyMs: 400 });
      const first = stack.gql(LIST, { ids: ids(stack, 100) });
      await new Promise((r) => setTimeout(r, 50));
      const client = await sentByImpatientClient(stack, LIST, { ids: ids(stack, 200) });
      await new Promise((r) => setTimeout(r, 50));
      expect(await metricsText(stack)).toMatch(/gateway_admission_queue_requests\{state="waiting"\} 1/);
      expect(await client.hangUp()).toBe(false);
      expect((await first).status).toBe(200);
      await new Promise((r) => setTimeout(r, 100));
      expect((await stack.stats('identity')).routes[READ_ROUTES.search]?.batchSizes).toEqual([50]);
      expect(await metricsText(stack)).toMatch(/gateway_admission_queue_requests\{state="waiting"\} 0/);
    });
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
