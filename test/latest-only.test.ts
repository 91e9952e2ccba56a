import { createPubSub } from 'graphql-yoga';
import { describe, expect, it } from 'vitest';
import { latestOnly } from '../src/realtime/latest-only.js';

/** The unread-count subscription's stream: a burst folds into the reads a slow consumer can make, the last state always delivered. */
describe('latestOnly', () => {
  it('a burst while the consumer is busy folds into one; the last event is delivered; return() ends it', async () => {
    const pubsub = createPubSub<{ count: [string, number] }>();
    const events = latestOnly(pubsub.subscribe('count', 'u')[Symbol.asyncIterator]());
    const first = events.next();
    pubsub.publish('count', 'u', 1);
    expect(await first).toEqual({ done: false, value: 1 });
    // The consumer is "reading" while 100 more arrive.
    for (let i = 2; i <= 101; i++) pubsub.publish('count', 'u', i);
    await new Promise((r) => setTimeout(r, 10));
    expect(await events.next()).toEqual({ done: false, value: 101 });
    const waiting = events.next();
    await events.return!();
    expect(await waiting).toEqual({ done: true, value: undefined });
    expect(await events.next()).toEqual({ done: true, value: undefined });
  });

  it('events the consumer keeps up with are each delivered', async () => {
    const pubsub = createPubSub<{ count: [string, number] }>();
    const events = latestOnly(pubsub.subscribe('count', 'u')[Symbol.asyncIterator]());
    const got: number[] = [];
    for (let i = 1; i <= 20; i++) {
      const next = events.next();
      pubsub.publish('count', 'u', i);
      got.push((await next).value as number);
    }
    expect(got).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    await events.return!();
  });
});
