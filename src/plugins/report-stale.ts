import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import type { StaleReport } from '../cache/stale-report.js';
import type { ExecuteDoneHooks } from './graphql-results.js';

type StaleContext = { stale: StaleReport };

const reportWhenDone: ExecuteDoneHooks<StaleContext> = {
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

/**
 * Adds `extensions.stale` to a response that used stale data. With
 * @defer/@stream, each part carries the fields it answered stale (those not
 * already reported by an earlier part).
 */
export function useStaleReport(): Plugin<StaleContext> {
  return { onExecute: () => reportWhenDone };
}
