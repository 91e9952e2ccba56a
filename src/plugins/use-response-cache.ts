import type { ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Dependencies, ResponseCache } from '../cache/response-cache.js';
import type { Viewer } from '../viewer.js';

interface ResponseCacheContext {
  viewer?: Viewer;
  dependencies: Dependencies;
}

/**
 * Answers a repeated entity query from the ResponseCache, and keeps the
 * responses it may. Placed after the plugins whose onExecuteDone must run for
 * every operation (request log, deadline, stale report): a hit stops the
 * plugins after it.
 */
export interface ResponseCachePluginOptions {
  /** The responses kept, keyed on document, variables and caller; retired when an entry they were built from changes. */
  cache: ResponseCache;
}

export function useResponseCache({ cache }: ResponseCachePluginOptions): Plugin<ResponseCacheContext> {
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const { viewer, dependencies } = args.contextValue;
      if (!viewer) return;
      const key = cache.key(args.document, args.operationName, args.variableValues, viewer);
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
          const json = cache.set(key, result, dependencies);
          // This response's own serialization: the JSON just made.
          if (json !== null) setResult({ ...result, stringify: () => json } as ExecutionResult);
        },
      };
    },
  };
}
