import { responsePathAsArray, type GraphQLResolveInfo } from 'graphql';
import type { MaybePromise } from '../maybe-promise.js';
import type { Served, StaleMark } from './entity-cache.js';

/** One entry of the response's `extensions.stale`. */
export interface StaleField extends StaleMark {
  path: (string | number)[];
}

/** What a request was served from the cache past its TTL, to be named in its response. */
export class StaleReport {
  readonly fields: StaleField[] = [];

  /**
   * The value, at once for an L1 hit, when it arrives otherwise; when it was
   * stale, notes it at the field's path (plus `index` for one item of a list field).
   */
  take<V>(served: MaybePromise<Served<V>>, info: GraphQLResolveInfo, index?: number): MaybePromise<V> {
    // A bound method, not a closure made per field: see bench/RESULTS.md, session 36.
    return served instanceof Promise ? (served.then(this.note.bind(this, info, index)) as Promise<V>) : this.note(info, index, served);
  }

  private note<V>(info: GraphQLResolveInfo, index: number | undefined, served: Served<V>): V {
    if (served.stale) {
      const path = responsePathAsArray(info.path);
      if (index !== undefined) path.push(index);
      this.fields.push({ path, ...served.stale });
    }
    return served.value;
  }
}
