/** What a subscriber that fell too far behind gets in place of the events held for it and the rest. */
export class FellBehind {
  constructor(readonly held: number) {}
}

/** How a subscriber's unread events are kept: the latest state only, or every fact up to `max`. */
export type Keep = { latest: true } | { latest: false; max: number; onFellBehind?: (held: number) => void };

/**
 * What one subscriber has not read yet, filled by the event listener as events
 * come (synchronously, however many at once) and read by the subscription.
 *
 * - `latest`: a state (an unread count, a profile). Events that come while the
 *   consumer is busy or not reading replace the one held: a burst of 50 costs
 *   a subscriber one or two reads, and the last state always arrives.
 * - `all`, at most `max`: a stream of facts (notifications). One more than
 *   `max` unread, and the subscription ends: the events held are dropped
 *   (a stalled connection would keep them as long as it stays open), the
 *   consumer gets one FellBehind, then the end, and `release` is called.
 *
 * Not graphql-yoga's pub/sub queue: it holds at most 1,024 pushes and then
 * throws inside the listener. A subscriber that stopped reading (a phone on a
 * bad network), or 2,000 events arriving in one read of the Redis socket, made
 * it throw in the Redis message handler, and the process exited.
 */
export class SubscriberQueue<T> implements AsyncIterableIterator<T | FellBehind> {
  private readonly held: (T | FellBehind)[] = [];
  /** Calls of next() not answered yet, oldest first: a consumer may ask again before its last answer came. */
  private readonly waiting: ((result: IteratorResult<T | FellBehind>) => void)[] = [];
  private closed = false;

  constructor(
    private readonly keep: Keep,
    /** Called once, when the queue ends: the listener is removed. */
    private readonly release: () => void,
  ) {}

  push(value: T): void {
    if (this.closed) return;
    const resolve = this.waiting.shift();
    if (resolve) {
      resolve({ done: false, value });
    } else if (this.keep.latest) {
      this.held[0] = value;
    } else if (this.held.length < this.keep.max) {
      this.held.push(value);
    } else {
      const held = this.held.length;
      this.keep.onFellBehind?.(held);
      this.held.length = 0;
      this.held.push(new FellBehind(held));
      this.end();
    }
  }

  next(): Promise<IteratorResult<T | FellBehind>> {
    if (this.held.length > 0) return Promise.resolve({ done: false, value: this.held.shift()! });
    if (this.closed) return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  return(): Promise<IteratorResult<T | FellBehind>> {
    this.held.length = 0;
    this.end();
    return Promise.resolve({ done: true, value: undefined });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private end(): void {
    if (this.closed) return;
    this.closed = true;
    this.release();
    for (const resolve of this.waiting.splice(0)) resolve({ done: true, value: undefined });
  }
}
