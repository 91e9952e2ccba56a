import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import type { Loaders } from '../context.js';
import type { Deadline } from '../resilience/deadline.js';

/**
 * Clears the request's deadline timer and takes its entity reads off the
 * count in flight once its operation has executed, so the request leaves
 * nothing behind. With @defer/@stream that is after the last part: the
 * deferred fields are fetched under the same deadline.
 */
export function useDeadlineDisposal(): Plugin<{ deadline: Deadline; loaders: Loaders }> {
  return {
    onExecute({ args }) {
      const done = () => {
        args.contextValue.deadline.dispose();
        args.contextValue.loaders.finish();
      };
      return {
        onExecuteDone({ result }) {
          if (isAsyncIterable(result)) return { onEnd: done };
          done();
          return undefined;
        },
      };
    },
  };
}
