import { getOperationAST, type ExecutionResult } from 'graphql';
import type { GraphQLParams, Plugin } from 'graphql-yoga';
import type { Dependencies, ResponseCache } from '../cache/response-cache.js';
import type { Metrics } from '../observability/metrics.js';
import type { Viewer } from '../viewer.js';
import type { KeyedRequest } from '../http/cached-responses.js';

interface ResponseCacheContext {
  viewer?: Viewer;
  dependencies: Dependencies;
  params: GraphQLParams;
  /** The node request, when the HTTP layer looked it up already (its key, computed there). */
  req?: KeyedRequest;
}

/**
 * Keeps the responses the ResponseCache may answer again, and answers a
 * repeat that reached yoga (a GET, or what the HTTP layer's hit path declined:
 * src/http/cached-responses.ts answers most repeats before yoga). Placed after
 * the plugins whose onExecuteDone must run for every operation (request log,
 * deadline, stale report): a hit stops the plugins after it.
 */
export interface ResponseCachePluginOptions {
  /** The responses kept, keyed on document hash, operation, variables and caller; retired when an entry they were built from changes. */
  cache: ResponseCache;
  /** The operation's label, kept with the response for the hit path's metrics. */
  metrics: Metrics;
}

export function useResponseCache({ cache, metrics }: ResponseCachePluginOptions): Plugin<ResponseCacheContext> {
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const { viewer, dependencies, params } = args.contextValue;
      if (!viewer || !cache.answers(args.document, args.operationName)) return;
      const key = args.contextValue.req?.responseCacheKey ?? cache.key(params, viewer);
      if (key === null) return;
      const cached = cache.get(key);
      if (cached) {
        setResultAndStopExecution(cached);
        return;
      }
      if (!cache.admits(key)) return;
      return {
        onExecuteDone({ result, setResult }) {
          if (Symbol.asyncIterator in result) return;
          const operation = metrics.operationLabel(getOperationAST(args.document, args.operationName)?.name?.value ?? args.operationName);
          const json = cache.set(key, result, dependencies, operation);
          // This response's own serialization: the JSON just made.
          if (json !== null) setResult({ ...result, stringify: () => json } as ExecutionResult);
        },
      };
    },
  };
}
