import type { GraphQLError } from 'graphql';
import { isAsyncIterable } from 'graphql-yoga';
import type { IncrementalPart } from './graphql-results.js';
import type { AfterExecution } from './use-after-execution.js';

/**
 * The errors of @defer/@stream's later parts, masked like a response's own
 * (yoga's maskedErrors sees only `errors` at the top of a result): a vendor's
 * failure with its typed code, anything unexpected as "Unexpected error.".
 * After the plugins that read the original errors (the request log).
 */
export function maskLaterParts(maskError: (error: unknown, message: string) => Error): AfterExecution {
  const mask = (error: GraphQLError) => maskError(error, 'Unexpected error.') as GraphQLError;
  return {
    onExecuteDone({ result }) {
      if (!isAsyncIterable(result)) return undefined;
      return {
        onNext({ result: part, setResult }) {
          const { incremental } = part as IncrementalPart;
          if (!incremental?.some((i) => i.errors?.length)) return;
          setResult({ ...part, incremental: incremental.map((i) => (i.errors?.length ? { ...i, errors: i.errors.map(mask) } : i)) } as typeof part);
        },
      };
    },
  };
}
