/** A value now, or a promise of it: what lets a cache hit skip the promise machinery. */
export type MaybePromise<T> = T | Promise<T>;

/** `f` applied to the value: at once when there is one, when it arrives otherwise (a promise `f` returns is waited for). */
export function mapMaybePromise<T, R>(value: MaybePromise<T>, f: (value: T) => MaybePromise<R>): MaybePromise<R> {
  return value instanceof Promise ? value.then(f) : f(value);
}
