import { isAsyncIterable } from 'graphql-yoga';
import type { StaleReport } from '../cache/stale-report.js';
import type { AfterExecution } from './use-after-execution.js';

/**
 * Adds `extensions.stale` to a response that used stale data. With
 * @defer/@stream, each part carries the fields it answered stale (those not
 * already reported by an earlier part).
 */
export const reportStale: AfterExecution<{ stale: StaleReport }> = {
  onExecuteDone({ args, result, setResult }) {
    const { stale } = args.contextValue;
    if (isAsyncIterable(result)) {
      let reported = 0;
      return {
        onNext({ result: part, setResult: setPart }) {
          const fields = stale.fields.slice(reported);
          if (fields.length === 0) return;
          reported = stale.fields.length;
          setPart({ ...part, extensions: { ...part.extensions, stale: fields } });
        },
      };
    }
    if (stale.fields.length === 0) return undefined;
    setResult({ ...result, extensions: { ...result.extensions, stale: stale.fields } });
    return undefined;
  },
};
