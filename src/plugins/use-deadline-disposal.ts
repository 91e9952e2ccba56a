import type { Plugin } from 'graphql-yoga';
import type { Deadline } from '../resilience/deadline.js';

/** Clears the request's deadline timer once its operation has executed, so the request leaves nothing behind. */
export function useDeadlineDisposal(): Plugin<{ deadline: Deadline }> {
  return {
    onExecute({ args }) {
      return {
        onExecuteDone() {
          args.contextValue.deadline.dispose();
        },
      };
    },
  };
}
