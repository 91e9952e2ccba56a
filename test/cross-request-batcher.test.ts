import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CrossRequestBatcher, type BatchFetch } from '../src/cache/cross-request-batcher.js';
import { Deadline } from '../src/resilience/deadline.js';

/** The batcher's contract, on fake timers: what is batched together, what is joined, what a broken fetch does. */
describe('CrossRequestBatcher', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  function batcher(fetch: BatchFetch<string, string | null>, options: { windowMs?: number; perKey?: boolean } = {}) {
    const calls: { keys: string[]; deadlineMs: number }[] = [];
    const b = new CrossRequestBatcher<string, string | null>({
      name: 'test.entity',
      windowMs: options.windowMs ?? 2,
      sharedDeadlineMs: 5000,
      ...(options.perKey ? { perKey: true } : {}),
      fetch: (keys, deadline) => {
        calls.push({ keys: [...keys], deadlineMs: deadline.remainingMs() });
        return fetch(keys, deadline);
      },
    });
    return { b, calls };
  }
  const upper: BatchFetch<string, string | null> = async (keys) => keys.map((k) => k.toUpperCase());

  it('loads from several requests within the window go out as one fetch, each answer to its own key', async () => {
    const { b, calls } = batcher(upper);
    const first = b.load(['a', 'b'], ['a', 'b'], Deadline.after(1000));
    const second = b.load(['c'], ['c'], Deadline.after(3000));
    expect(calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(2);
    expect(calls.map((c) => c.keys)).toEqual([['a', 'b', 'c']]);
    // The batch runs under the latest of its waiters' deadlines, not the first's.
    expect(calls[0]!.deadlineMs).toBeGreaterThan(2900);
    expect([...(await first), ...(await second)]).toEqual(['A', 'B', 'C']);
  });

  it('a key already in flight is joined, not fetched again; after its answer it is fetched anew', async () => {
    let release!: () => void;
    const { b, calls } = batcher((keys) => new Promise((resolve) => (release = () => resolve(keys.map((k) => `${k}!`)))));
    const one = b.load(['a'], ['a'], null);
    await vi.advanceTimersByTimeAsync(2);
    const joined = b.load(['a'], ['a'], null);
    expect(b.has('a')).toBe(true);
    await vi.advanceTimersByTimeAsync(10);
    expect(calls).toHaveLength(1);
    release();
    expect([...(await one), ...(await joined)]).toEqual(['a!', 'a!']);
    expect(b.has('a')).toBe(false);
    b.load(['a'], ['a'], null);
    await vi.advanceTimersByTimeAsync(2);
    expect(calls).toHaveLength(2);
  });

  it('one call waiting on two batches (a key joined in flight, a key batched anew, a key twice) gets its answers in its order', async () => {
    const releases: (() => void)[] = [];
    const { b, calls } = batcher((keys) => new Promise((resolve) => releases.push(() => resolve(keys.map((k) => k.toUpperCase())))));
    const first = b.load(['a'], ['a'], null);
    await vi.advanceTimersByTimeAsync(2); // a's batch is in flight
    const mixed = b.load(['b', 'a', 'b'], ['b', 'a', 'b'], null);
    await vi.advanceTimersByTimeAsync(2);
    expect(calls.map((c) => c.keys)).toEqual([['a'], ['b']]);
    let settled = false;
    void mixed.then(() => (settled = true));
    releases[1]!(); // b's batch answers first: the call still waits on a's
    await vi.advanceTimersByTimeAsync(0);
    expect(settled).toBe(false);
    releases[0]!();
    expect(await mixed).toEqual(['B', 'A', 'B']);
    expect(await first).toEqual(['A']);
    expect([b.has('a'), b.has('b')]).toEqual([false, false]);
  });

  it('window 0: the rest of this turn of the event loop, then one fetch', async () => {
    const { b, calls } = batcher(upper, { windowMs: 0 });
    const a = b.load(['a'], ['a'], null);
    const c = b.load(['c'], ['c'], null);
    await vi.advanceTimersByTimeAsync(0);
    expect(calls.map((x) => x.keys)).toEqual([['a', 'c']]);
    expect([...(await a), ...(await c)]).toEqual(['A', 'C']);
  });

  it('per key: each load goes at once with its own keys', async () => {
    const { b, calls } = batcher(upper, { perKey: true });
    b.load(['a'], ['a'], null);
    b.load(['b'], ['b'], null);
    await vi.advanceTimersByTimeAsync(0);
    expect(calls.map((x) => x.keys)).toEqual([['a'], ['b']]);
  });

  it("per key: the fetch runs under the caller's own deadline (its expiry aborts it); a load outside any request gets one of its own", async () => {
    const seen: Deadline[] = [];
    const { b } = batcher(
      (keys, deadline) => {
        seen.push(deadline);
        return new Promise((resolve) => deadline.signal.addEventListener('abort', () => resolve(keys.map(() => new Error('aborted')))));
      },
      { perKey: true },
    );
    const callers = Deadline.after(100);
    const mine = b.load(['a'], ['a'], callers);
    b.load(['b'], ['b'], null);
    expect(seen[0]).toBe(callers);
    expect(seen[1]).not.toBe(callers);
    expect(seen[1]!.remainingMs()).toBeGreaterThan(4900);
    await vi.advanceTimersByTimeAsync(100);
    expect(await mine).toEqual([new Error('aborted')]);
    expect(seen[1]!.signal.aborted).toBe(false);
  });

  it('an Error fails its key alone; a rejection fails the batch; a short answer fails the keys it left out, naming the contract', async () => {
    const { b: perKeyError } = batcher(async (keys) => keys.map((k) => (k === 'bad' ? new Error('bad key') : k)));
    const results = perKeyError.load(['ok', 'bad'], ['ok', 'bad'], null);
    await vi.advanceTimersByTimeAsync(2);
    const [ok, bad] = await results;
    expect(ok).toBe('ok');
    expect(bad).toBeInstanceOf(Error);

    const { b: rejecting } = batcher(async () => {
      throw new Error('down');
    });
    const failed = rejecting.load(['x', 'y'], ['x', 'y'], null);
    await vi.advanceTimersByTimeAsync(2);
    expect((await failed).map((r) => (r as Error).message)).toEqual(['down', 'down']);

    const { b: short } = batcher(async (keys) => keys.slice(0, 1).map((k) => k));
    const answers = short.load(['p', 'q'], ['p', 'q'], null);
    await vi.advanceTimersByTimeAsync(2);
    const [p, q] = await answers;
    expect(p).toBe('p');
    expect((q as Error).message).toBe('the batch fetch of test.entity returned 1 values for 2 keys');
  });

  it('null is a value ("no such entity"), not a missing answer', async () => {
    const { b } = batcher(async (keys) => keys.map(() => null));
    const answers = b.load(['nobody'], ['nobody'], null);
    await vi.advanceTimersByTimeAsync(2);
    expect(await answers).toEqual([null]);
  });
});
