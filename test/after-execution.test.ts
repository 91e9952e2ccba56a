import type { ExecutionResult } from 'graphql';
import { describe, expect, it } from 'vitest';
import { useAfterExecution, type AfterExecution } from '../src/plugins/use-after-execution.js';

type Done = (payload: unknown) => { onNext?: (p: unknown) => void; onEnd?: () => void } | undefined;

/** The plugin's one onExecuteDone, as envelop would get it. */
function doneHook(...concerns: AfterExecution[]): Done {
  const plugin = useAfterExecution(...concerns);
  const hooks = (plugin.onExecute as (p: unknown) => { onExecuteDone: Done })({ args: {} });
  return hooks.onExecuteDone;
}

const tagging = (tag: string, seen: string[]): AfterExecution => ({
  onExecuteDone({ result, setResult }) {
    const r = result as ExecutionResult;
    seen.push(`${tag} saw ${JSON.stringify(r.extensions ?? {})}`);
    setResult({ ...r, extensions: { ...r.extensions, [tag]: true } });
    return undefined;
  },
});

describe('useAfterExecution', () => {
  it('runs each concern in order, each on the result the one before set, and sets the last result once', () => {
    const seen: string[] = [];
    const set: unknown[] = [];
    const first: ExecutionResult = { data: { a: 1 } };
    const stream = doneHook(tagging('one', seen), tagging('two', seen))({ args: {}, result: first, setResult: (r: unknown) => set.push(r) });
    expect(stream).toBeUndefined();
    expect(seen).toEqual(['one saw {}', 'two saw {"one":true}']);
    expect(set).toEqual([{ data: { a: 1 }, extensions: { one: true, two: true } }]);
  });

  it('each concern that times the operation is told as it starts, in order, with the arguments its end then gets', () => {
    const calls: string[] = [];
    const args = { operationName: 'Dashboard' };
    const timed = (tag: string): AfterExecution => ({
      onExecute: (a) => void calls.push(`${tag} start ${a === (args as unknown) ? 'same args' : 'other args'}`),
      onExecuteDone: ({ args: a }) => (calls.push(`${tag} done ${a === (args as unknown) ? 'same args' : 'other args'}`), undefined),
    });
    const plugin = useAfterExecution(timed('one'), { onExecuteDone: () => undefined }, timed('two'));
    const hooks = (plugin.onExecute as (p: unknown) => { onExecuteDone: Done })({ args });
    expect(calls).toEqual(['one start same args', 'two start same args']);
    hooks.onExecuteDone({ args, result: {}, setResult: () => {} });
    expect(calls.slice(2)).toEqual(['one done same args', 'two done same args']);
  });

  it('leaves the result alone when no concern changes it', () => {
    const set: unknown[] = [];
    doneHook({ onExecuteDone: () => undefined })({ args: {}, result: { data: {} }, setResult: (r: unknown) => set.push(r) });
    expect(set).toEqual([]);
  });

  it('a streamed result: every later part through each concern’s onNext in order, then every onEnd', () => {
    const calls: string[] = [];
    const streaming = (tag: string, withEnd: boolean): AfterExecution => ({
      onExecuteDone: () => ({
        onNext({ result, setResult }) {
          calls.push(`${tag} next ${JSON.stringify(result)}`);
          setResult({ ...(result as object), [tag]: true } as ExecutionResult);
        },
        ...(withEnd ? { onEnd: () => void calls.push(`${tag} end`) } : {}),
      }),
    });
    const stream = doneHook(streaming('a', true), { onExecuteDone: () => undefined }, streaming('b', false))({ args: {}, result: {}, setResult: () => {} })!;
    const parts: unknown[] = [];
    stream.onNext!({ args: {}, result: { n: 1 }, setResult: (r: unknown) => parts.push(r) });
    stream.onEnd!();
    expect(calls).toEqual(['a next {"n":1}', 'b next {"n":1,"a":true}', 'a end']);
    expect(parts).toEqual([{ n: 1, a: true, b: true }]);
  });
});
