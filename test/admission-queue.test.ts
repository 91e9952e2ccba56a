import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { AdmissionQueue, READS_ASSUMED_BEFORE_LEARNING, RUNNING_BEFORE_LEARNING, type AdmissionSettings } from '../src/http/admission-queue.js';
import { exposedGc } from './helpers/heap.js';

/**
 * The queue on its own, with responses that are only what it listens to (their
 * 'close'): who starts, in what order, who is refused or dropped. The server's
 * use of it, with real requests and vendors, is in load-shedding.test.ts.
 */
const response = () => new EventEmitter() as unknown as ServerResponse;
const settings = (over: Partial<AdmissionSettings> = {}): AdmissionSettings => ({ queueAtEntityReads: 300, maxWaitMs: 5000, ...over });

function harness(queue: AdmissionQueue) {
  const started: number[] = [];
  const refused: number[] = [];
  const responses: ServerResponse[] = [];
  const admit = (n: number) => {
    const res = response();
    responses[n] = res;
    queue.admit(
      res,
      () => started.push(n),
      () => refused.push(n),
    );
  };
  return { started, refused, admit, finish: (n: number) => responses[n]!.emit('close') };
}

describe('admission queue', () => {
  it('until a request has finished, one runs at a time; then requests × their average reads stay within the budget, first come first served', () => {
    const queue = new AdmissionQueue(settings());
    const h = harness(queue);
    // A process just started under load knows nothing of its requests' size: a burst of large lists must not all go in.
    for (const n of [0, 1, 2]) h.admit(n);
    expect(h.started).toEqual([0]);
    expect(queue.waiting).toBe(2);
    queue.learn(150); // a 50-user list: 150 reads; two of them fill 300
    h.finish(0);
    expect(h.started).toEqual([0, 1, 2]);
    for (const n of [3, 4, 5]) h.admit(n);
    expect(h.started).toEqual([0, 1, 2]);
    expect(queue.waiting).toBe(3);
    h.finish(1);
    expect(h.started).toEqual([0, 1, 2, 3]);
    h.finish(2);
    expect(h.started).toEqual([0, 1, 2, 3, 4]);
    h.finish(3);
    expect(h.started).toEqual([0, 1, 2, 3, 4, 5]);
    expect(queue.waiting).toBe(0);
    expect(h.refused).toEqual([]);
  });

  it('before any request has finished, waiters whose maxWaitMs runs out go in up to a few running, and the rest are refused', async () => {
    // A restarted process whose first request is held up by a stalled vendor: its other callers must not all get 503s,
    // nor may the whole line (which passed the load shedder with nothing running) go in at once.
    const queue = new AdmissionQueue(settings({ maxWaitMs: 40 }));
    const h = harness(queue);
    const few = RUNNING_BEFORE_LEARNING;
    expect(few).toBeGreaterThan(1);
    const callers = Array.from({ length: few + 3 }, (_, n) => n);
    for (const n of callers) h.admit(n); // none finishes in this test
    expect(h.started).toEqual([0]);
    await new Promise((r) => setTimeout(r, 80));
    expect(h.started).toEqual(callers.slice(0, few));
    expect(h.refused).toEqual(callers.slice(few));
    expect(queue.waiting).toBe(0);
    expect(queue.inProgress).toBe(few);
  });

  it('before any request has finished, past those few, waiters go in while the reads made so far (or the assumed floor) leave room: small requests, not large ones', async () => {
    const few = RUNNING_BEFORE_LEARNING;
    const room = 3000 / READS_ASSUMED_BEFORE_LEARNING; // 60 at the default budget
    expect(room).toBeGreaterThan(few + 12);
    const callers = Array.from({ length: room + 5 }, (_, n) => n);
    // Every vendor stalled since the start: dashboards that made their 7 reads each and wait on them, taken as 50 each.
    let queue: AdmissionQueue = new AdmissionQueue(settings({ maxWaitMs: 40, queueAtEntityReads: 3000 }), { readsSoFar: () => 7 * queue.inProgress });
    let h = harness(queue);
    for (const n of callers) h.admit(n);
    await new Promise((r) => setTimeout(r, 80));
    expect(h.started).toEqual(callers.slice(0, room));
    expect(h.refused).toEqual(callers.slice(room));
    // 500-user lists that made their 500 user reads each: past the few, the rest are refused as before.
    queue = new AdmissionQueue(settings({ maxWaitMs: 40, queueAtEntityReads: 3000 }), { readsSoFar: () => 500 * queue.inProgress });
    h = harness(queue);
    for (const n of callers) h.admit(n);
    await new Promise((r) => setTimeout(r, 80));
    expect(h.started).toEqual(callers.slice(0, few));
    expect(h.refused).toEqual(callers.slice(few));
  });

  it('once a request has finished, a waiter whose maxWaitMs runs out is refused, however few run', async () => {
    const queue = new AdmissionQueue(settings({ maxWaitMs: 40, queueAtEntityReads: 100 }));
    queue.learn(100); // one request at a time
    const h = harness(queue);
    for (const n of [0, 1, 2]) h.admit(n);
    await new Promise((r) => setTimeout(r, 80));
    expect(h.started).toEqual([0]);
    expect(h.refused).toEqual([1, 2]);
    expect(queue.inProgress).toBe(1);
  });

  it('one request always runs, however many reads an average one makes', () => {
    const queue = new AdmissionQueue(settings({ queueAtEntityReads: 100 }));
    queue.learn(1500); // 500-user lists
    const h = harness(queue);
    h.admit(0);
    h.admit(1);
    expect(h.started).toEqual([0]);
    h.finish(0);
    expect(h.started).toEqual([0, 1]);
  });

  it('a request that waits maxWaitMs is refused, one whose client hangs up leaves the line, and neither starts later', async () => {
    const queue = new AdmissionQueue(settings({ queueAtEntityReads: 100, maxWaitMs: 60 }));
    queue.learn(100);
    const h = harness(queue);
    h.admit(0);
    h.admit(1);
    h.admit(2);
    h.finish(2); // its client is gone while it waits
    expect(queue.waiting).toBe(1);
    await new Promise((r) => setTimeout(r, 100));
    expect(h.refused).toEqual([1]);
    expect(queue.waiting).toBe(0);
    h.finish(0);
    h.admit(3);
    expect(h.started).toEqual([0, 3]);
  });

  it('the average follows the mix: after cheap requests, more of them run at once', () => {
    const queue = new AdmissionQueue(settings({ queueAtEntityReads: 300 }));
    queue.learn(150);
    for (let i = 0; i < 100; i++) queue.learn(5); // dashboards
    const h = harness(queue);
    for (let n = 0; n < 40; n++) h.admit(n);
    expect(h.started).toHaveLength(40);
  });

  it('0 reads: no line at all', () => {
    const queue = new AdmissionQueue(settings({ queueAtEntityReads: 0 }));
    queue.learn(10_000);
    const h = harness(queue);
    for (let n = 0; n < 5; n++) h.admit(n);
    expect(h.started).toHaveLength(5);
    expect(queue.inProgress).toBe(0);
  });
  it('a request that has left the line (answered or gone) is not kept by it, while the line never empties', async () => {
    // Under steady overload the line is never empty. Each entry reaches its request (a 500-user list's parsed body
    // alone is ~60 KB); a line that kept its past entries until it emptied held hundreds of answered requests
    // (bench/RESULTS.md, session 33).
    const queue = new AdmissionQueue(settings({ queueAtEntityReads: 100 }));
    queue.learn(100); // one request at a time
    const bodies: WeakRef<object>[] = [];
    const responses: ServerResponse[] = [];
    const started: number[] = [];
    const closed = new Set<number>();
    const admit = (n: number) => {
      const body = { ids: Array.from({ length: 500 }, (_, i) => `user-${n}-${i}`) };
      bodies[n] = new WeakRef(body);
      responses[n] = response();
      // As node-server's do, the closures handed to the line reach the request's body.
      queue.admit(
        responses[n],
        () => {
          started.push(n);
          return body;
        },
        () => body,
      );
    };
    const close = (n: number) => {
      closed.add(n);
      responses[n]!.emit('close');
    };
    admit(0);
    admit(1);
    for (let n = 2; n < 300; n += 2) {
      admit(n);
      admit(n + 1);
      close(n + 1); // its client gives up while it waits
      close(started.at(-1)!); // the running one is answered; the next in line starts
      expect(queue.waiting).toBeGreaterThan(0);
    }
    expect(started.length).toBeGreaterThan(140);
    await new Promise((r) => setTimeout(r, 0)); // a WeakRef read in this turn keeps its target until the turn ends
    exposedGc()();
    const kept = bodies.flatMap((ref, n) => (ref.deref() ? [n] : []));
    // Only the ones in line: the one running has left it too (its request holds its body, not the line).
    const inLine = bodies.flatMap((_, n) => (closed.has(n) || started.includes(n) ? [] : [n]));
    expect(inLine).toHaveLength(1);
    expect(kept).toEqual(inLine);
  });
});
