import { describe, expect, it } from 'vitest';
import { FellBehind, SubscriberQueue } from '../src/realtime/subscriber-queue.js';

/** What one subscriber has not read: the latest state only, or every fact up to a bound, never growing with a consumer that stopped reading. */
describe('SubscriberQueue', () => {
  const drain = async (queue: SubscriberQueue<number>) => {
    const got: unknown[] = [];
    for (;;) {
      const r = await queue.next();
      if (r.done) return got;
      got.push(r.value);
    }
  };

  it('latest: a burst while the consumer is busy folds into one, the last event delivered; return() ends a waiting consumer and releases once', async () => {
    let released = 0;
    const queue = new SubscriberQueue<number>({ latest: true }, () => released++);
    const first = queue.next();
    queue.push(1);
    expect(await first).toEqual({ done: false, value: 1 });
    // The consumer is "reading" while 2,000 more arrive in one go (one read of the Redis socket).
    for (let i = 2; i <= 2001; i++) queue.push(i);
    expect(await queue.next()).toEqual({ done: false, value: 2001 });
    const waiting = queue.next();
    await queue.return();
    await queue.return();
    expect(await waiting).toEqual({ done: true, value: undefined });
    expect(await queue.next()).toEqual({ done: true, value: undefined });
    expect(released).toBe(1);
  });

  it('all: a consumer that keeps up gets every event in order; one that stops reading past max gets FellBehind, then the end (what was held is dropped), and the listener is released', async () => {
    let released = 0;
    let told = 0;
    const queue = new SubscriberQueue<number>({ latest: false, max: 5, onFellBehind: (held) => (told = held) }, () => released++);
    const got: unknown[] = [];
    for (let i = 1; i <= 3; i++) {
      const next = queue.next();
      queue.push(i);
      got.push((await next).value);
    }
    expect(got).toEqual([1, 2, 3]);
    // graphql-yoga's pub/sub queue threw past 1,024 here, inside the listener.
    for (let i = 4; i <= 2003; i++) queue.push(i);
    const rest = await drain(queue);
    expect(rest).toEqual([new FellBehind(5)]);
    expect(told).toBe(5);
    expect(released).toBe(1);
  });

  it('a consumer that asks again before its last answer came gets each event once, in order; return() answers every call waiting', async () => {
    const queue = new SubscriberQueue<number>({ latest: false, max: 5 }, () => undefined);
    const asked = [queue.next(), queue.next(), queue.next()];
    queue.push(1);
    queue.push(2);
    expect(await asked[0]).toEqual({ done: false, value: 1 });
    expect(await asked[1]).toEqual({ done: false, value: 2 });
    await queue.return();
    expect(await asked[2]).toEqual({ done: true, value: undefined });
  });

  it('all: events held up to max are all delivered once the consumer reads again', async () => {
    const queue = new SubscriberQueue<number>({ latest: false, max: 5 }, () => undefined);
    for (let i = 1; i <= 5; i++) queue.push(i);
    const got = [];
    for (let i = 0; i < 5; i++) got.push((await queue.next()).value);
    expect(got).toEqual([1, 2, 3, 4, 5]);
    queue.push(6);
    expect(await queue.next()).toEqual({ done: false, value: 6 });
    await queue.return();
    expect(await drain(queue)).toEqual([]);
  });
});
