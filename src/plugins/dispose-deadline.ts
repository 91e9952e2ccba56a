import { isAsyncIterable } from 'graphql-yoga';
import type { Deadline } from '../resilience/deadline.js';
import type { AfterExecution } from './use-after-execution.js';

/**
 * Clears the request's deadline timer once its operation has executed, so the
 * request leaves nothing behind. With @defer/@stream that is after the last
 * part: the deferred fields are fetched under the same deadline.
 */
export const disposeDeadline: AfterExecution<{ deadline: Deadline }> = {
  onExecuteDone({ args, result }) {
    const { deadline } = args.contextValue;
    if (isAsyncIterable(result)) return { onEnd: () => deadline.dispose() };
    deadline.dispose();
    return undefined;
  },
};
