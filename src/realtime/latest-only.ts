/**
 * An event stream where only the latest state matters (an unread count): events
 * that arrive while the consumer is still busy with the previous one (a read
 * of the count) fold into one. A burst of 50 notifications then costs a
 * subscriber one or two reads, not 50 in a row, and nothing queues up
 * behind a slow consumer. The last event of a burst is always delivered.
 */
export function latestOnly<T>(events: AsyncIterator<T>): AsyncIterator<T> {
  let pending: IteratorResult<T> | undefined;
  let waiting: ((result: IteratorResult<T>) => void) | undefined;
  let pumping = false;

  const deliver = (result: IteratorResult<T>) => {
    if (waiting) {
      const resolve = waiting;
      waiting = undefined;
      resolve(result);
    } else if (!pending?.done) {
      pending = result;
    }
  };
  const pump = async () => {
    pumping = true;
    try {
      for (;;) {
        const result = await events.next();
        deliver(result);
        if (result.done) return;
      }
    } catch {
      deliver({ done: true, value: undefined });
    }
  };

  return {
    next() {
      if (!pumping) void pump();
      if (pending) {
        const result = pending;
        if (!result.done) pending = undefined;
        return Promise.resolve(result);
      }
      return new Promise((resolve) => (waiting = resolve));
    },
    async return(value?: unknown) {
      pending = { done: true, value: undefined };
      deliver({ done: true, value: undefined });
      await events.return?.(value);
      return { done: true, value: undefined };
    },
  };
}
