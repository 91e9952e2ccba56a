/**
 * Whether a JSON value nests objects or arrays more than `max` levels deep.
 * Walked with a stack of its own, so no depth overflows ours: a value nested
 * some thousands deep parses (V8's JSON.parse does not recurse), but
 * `JSON.stringify` throws on it, and so would every response, cache key or
 * store that holds it.
 */
export function nestsDeeperThan(value: unknown, max: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  // Made only when a value holds another: most a request or an event holds are flat.
  let pending: object[] | undefined;
  let pendingDepths: number[] | undefined;
  let current: object = value;
  let depth = 1;
  for (;;) {
    if (Array.isArray(current)) {
      for (let i = 0; i < current.length; i++) {
        const child: unknown = current[i];
        if (typeof child !== 'object' || child === null) continue;
        if (depth === max) return true;
        (pending ??= []).push(child);
        (pendingDepths ??= []).push(depth + 1);
      }
    } else {
      for (const key in current) {
        const child: unknown = (current as Record<string, unknown>)[key];
        if (typeof child !== 'object' || child === null) continue;
        if (depth === max) return true;
        (pending ??= []).push(child);
        (pendingDepths ??= []).push(depth + 1);
      }
    }
    if (pending === undefined || pending.length === 0) return false;
    current = pending.pop()!;
    depth = pendingDepths!.pop()!;
  }
}
