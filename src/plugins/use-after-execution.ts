import type { Plugin } from 'graphql-yoga';
import type { ExecuteDoneHooks } from './graphql-results.js';

type DonePayload<Context extends Record<string, unknown>> = Parameters<NonNullable<ExecuteDoneHooks<Context>['onExecuteDone']>>[0];
type StreamHooks<Context extends Record<string, unknown>> = Exclude<Awaited<ReturnType<NonNullable<ExecuteDoneHooks<Context>['onExecuteDone']>>>, void>;
type PartPayload<Context extends Record<string, unknown>> = Parameters<NonNullable<StreamHooks<Context>['onNext']>>[0];

/** What one concern does once an operation has executed (and, to time it, as it starts); synchronous, as every such hook of ours is. */
export interface AfterExecution<Context extends Record<string, unknown> = Record<never, never>> {
  onExecute?(args: DonePayload<Context>['args']): void;
  onExecuteDone(payload: DonePayload<Context>): { onNext?: (part: PartPayload<Context>) => void; onEnd?: () => void } | undefined;
}

/**
 * Several concerns' after-execution hooks as one plugin, run in the order given, each seeing the result the ones
 * before it set (as envelop would run them as plugins of their own). Envelop walks each plugin's onExecute and
 * onExecuteDone through a promise-aware loop that allocated ~0.9 % of a cold dashboard's bytes a hook
 * (bench/RESULTS.md, session 31); concerns that need only the operation's start and its result pay for one turn.
 * Each concern's onExecute runs as the operation starts, in the same order, with the arguments its onExecuteDone
 * then gets. A concern that throws stops the ones after it, as a throwing plugin stops envelop's loop.
 */
export function useAfterExecution<Context extends Record<string, unknown>>(...concerns: AfterExecution<Context>[]): Plugin<Context> {
  const done: ExecuteDoneHooks<Context> = {
    onExecuteDone(payload) {
      const step = { args: payload.args, result: payload.result, setResult: (next: typeof payload.result) => void (step.result = next) };
      let streams: NonNullable<ReturnType<AfterExecution<Context>['onExecuteDone']>>[] | undefined;
      for (const concern of concerns) {
        const stream = concern.onExecuteDone(step);
        if (stream) (streams ??= []).push(stream);
      }
      if (step.result !== payload.result) payload.setResult(step.result);
      return streams && combineStreams(streams);
    },
  };
  const starts = concerns.filter((concern) => concern.onExecute !== undefined);
  return {
    onExecute({ args }) {
      for (const concern of starts) concern.onExecute!(args);
      return done;
    },
  };
}

/** The later parts' hooks of every concern that has some, as one: each part through each onNext in turn, then each onEnd. */
function combineStreams<Context extends Record<string, unknown>>(streams: { onNext?: (part: PartPayload<Context>) => void; onEnd?: () => void }[]): StreamHooks<Context> {
  return {
    onNext(payload) {
      const step = { args: payload.args, result: payload.result, setResult: (next: typeof payload.result) => void (step.result = next) };
      for (const stream of streams) stream.onNext?.(step);
      if (step.result !== payload.result) payload.setResult(step.result);
    },
    onEnd() {
      for (const stream of streams) stream.onEnd?.();
    },
  };
}
