import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import type { Deadline } from '../resilience/deadline.js';
import type { ExecuteDoneHooks } from './graphql-results.js';

type DeadlineContext = { deadline: Deadline };

const disposeWhenDone: ExecuteDoneHooks<DeadlineContext> = {
  onExecuteDone({ args, result }) {
    const { deadline } = args.contextValue;
    if (isAsyncIterable(result)) return { onEnd: () => deadline.dispose() };
    deadline.dispose();
    return undefined;
  },
};

/**
 * Clears the request's deadline timer once its operation has executed, so the
 * request leaves nothing behind. With @defer/@stream that is after the last
 * part: the deferred fields are fetched under the same deadline.
 */
export function useDeadlineDisposal(): Plugin<DeadlineContext> {
  return { onExecute: () => disposeWhenDone };
}
