import type { Plugin } from 'graphql-yoga';
import type { StaleReport } from '../cache/stale-report.js';

/** Adds `extensions.stale` to a response that used stale data. */
export function useStaleReport(): Plugin<{ stale: StaleReport }> {
  return {
    onExecute({ args }) {
      return {
        onExecuteDone({ result, setResult }) {
          const { fields } = args.contextValue.stale;
          if (fields.length === 0 || Symbol.asyncIterator in result) return;
          setResult({ ...result, extensions: { ...result.extensions, stale: fields } });
        },
      };
    },
  };
}
