import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import type { Deadline } from '../resilience/deadline.js';

/**
 * Clears the request's deadline timer once its operation has executed, so the
 * request leaves nothing behind. With @defer/@stream that is after the last
 * part: the deferred fields are fetched under the same deadline.
 */
export function useDeadlineDisposal(): Plugin<{ deadline: Deadline }> {
  return {
    onExecute({ args }) {
      return {
        onExecuteDone({ result }) {
          if (isAsyncIterable(result)) return { onEnd: () => args.contextValue.deadline.dispose() };
          args.contextValue.deadline.dispose();
          return undefined;
        },
      };
    },
  };
}
