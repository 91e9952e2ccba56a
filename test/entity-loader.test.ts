import { describe, expect, it, vi } from 'vitest';
import { EntityLoader, Loaders, ReadsInFlight } from '../src/context.js';
import type { Caches } from '../src/sources/caches.js';
import { entryWeight, MemoryTier, WINDOW_SHARE } from '../src/cache/memory-tier.js';
import { makeEntry } from '../src/cache/entry.js';
import { Dependencies } from '../src/cache/response-cache.js';
import { Deadline } from '../src/resilience/deadline.js';
import { testEntityCache, userCache } from './helpers/user-cache.js';

/**
 * A request's loads of one entity. L1 is off (a pass-through cache) unless a
 * test turns it on, so that only the loader can answer a repeat: what the
 * vendor is asked shows whether it did.
 */
function entity(answer: (key: string) => string | Error = (key) => `value of ${key}`, { l1 = new MemoryTier(1024 * 1024), enabled = false } = {}) {
  const asked: string[][] = [];
  const cache = userCache<string>(
    async (keys) => {
      asked.push([...keys]);
      return keys.map(answer);
    },
    l1,
    { enabled },
  );
  const request = () => new EntityLoader(cache, Deadline.after(5_000), new Dependencies());
  return { asked, request };
}

describe("a request's entity loads", () => {
  it('a key loaded again in the same request, before or after its answer, is asked of the source once', async () => {
    const { asked, request } = entity();
    const loader = request();
    const first = loader.load('a');
    const again = loader.load('a'); // the field's resolver after the prefetch, same tick
    const other = loader.load('b');
    expect(await Promise.all([first, again, other])).toEqual([
      { value: 'value of a', stale: null },
      { value: 'value of a', stale: null },
      { value: 'value of b', stale: null },
    ]);
    expect(await loader.load('a')).toEqual({ value: 'value of a', stale: null }); // after the answer
    expect(asked).toEqual([['a', 'b']]);
    // Another request asks again: what one request loaded is not kept for the next (L1 is, when on).
    expect(await request().load('a')).toEqual({ value: 'value of a', stale: null });
    expect(asked).toEqual([['a', 'b'], ['a']]);
  });

  it("a request joining another's fetch waits no longer than its own deadline; the first request still gets the answer", async () => {
    let answer!: () => void;
    const asked: string[][] = [];
    const cache = userCache<string>(
      async (keys) => {
        asked.push([...keys]);
        await new Promise<void>((r) => (answer = r));
        return keys.map((k) => `value of ${k}`);
      },
      new MemoryTier(1024 * 1024),
    );
    const first = new EntityLoader(cache, Deadline.after(5_000), new Dependencies()).load('a');
    await new Promise((r) => setImmediate(r)); // the first request's fetch is in flight
    const started = Date.now();
    await expect(new EntityLoader(cache, Deadline.after(50), new Dependencies()).load('a')).rejects.toMatchObject({ code: 'SOURCE_TIMEOUT', source: 'identity' });
    expect(Date.now() - started).toBeLessThan(1_000);
    answer();
    expect(await first).toEqual({ value: 'value of a', stale: null });
    expect(asked).toEqual([['a']]);
  });

  it('a wait that ended before its deadline makes no timeout errors when the deadline passes later', async () => {
    const cache = userCache<string>(async (keys) => keys.map((k) => `value of ${k}`), new MemoryTier(1024 * 1024));
    const timeouts = vi.spyOn(cache as unknown as { timeout: () => Error }, 'timeout');
    const deadline = Deadline.after(30);
    expect(await new EntityLoader(cache, deadline, new Dependencies()).load('a')).toEqual({ value: 'value of a', stale: null });
    await new Promise((r) => setTimeout(r, 60)); // the deadline passes, never disposed
    expect(deadline.expired).toBe(true);
    expect(timeouts).not.toHaveBeenCalled();
  });

  it('a primed key is answered with the value the request already has, and a primed key is not primed over', async () => {
    const { asked, request } = entity();
    const loader = request();
    loader.prime('u1', { value: 'from the list page', stale: null });
    loader.prime('u1', { value: 'a later copy', stale: null });
    expect(await loader.load('u1')).toEqual({ value: 'from the list page', stale: null });
    expect(asked).toEqual([]);
    const loaded = loader.load('u2');
    loader.prime('u2', { value: 'primed after the load', stale: null });
    expect(await loader.load('u2')).toEqual({ value: 'value of u2', stale: null });
    expect(await loaded).toEqual({ value: 'value of u2', stale: null });
    expect(asked).toEqual([['u2']]);
  });

  it('a key that failed stays failed for the rest of the request, without asking the source again', async () => {
    const { asked, request } = entity((key) => (key === 'bad' ? new Error('upstream said no') : `value of ${key}`));
    const loader = request();
    await expect(loader.load('bad')).rejects.toThrow('upstream said no');
    await expect(loader.load('bad')).rejects.toThrow('upstream said no');
    expect(asked).toEqual([['bad']]);
  });

  it("a key fetched for a request and read again by that request stays in L1's window: it evicts nothing L1 holds", async () => {
    const id = (key: string) => `identity.user\u0000${key}\u0000`;
    const weight = entryWeight(id('hot100'), 100);
    const bound = 40 * weight;
    const main = Math.floor((bound - Math.floor(bound * WINDOW_SHARE)) / weight);
    const l1 = new MemoryTier(bound);
    const hot = Array.from({ length: main }, (_, i) => `hot${100 + i}`);
    const policy = { ttlMs: 60_000, staleWhileRevalidateMs: 0, staleIfErrorMs: 0 };
    for (const key of hot) l1.set(id(key), key, makeEntry(`value of ${key}`, policy, 0), 100); // the main part, full
    const { asked, request } = entity((key) => `value of ${key}`, { l1, enabled: true });
    const loader = request();
    expect(await loader.load('cold')).toEqual({ value: 'value of cold', stale: null }); // the prefetch
    expect(await loader.load('cold')).toEqual({ value: 'value of cold', stale: null }); // the field's resolver
    expect(asked).toEqual([['cold']]);
    expect(l1.get(id(hot[0]!))).toBeDefined(); // the least recently used is still there
    // A second request for it is what moves it into the main part, in place of the least recently used.
    expect(await request().load('cold')).toEqual({ value: 'value of cold', stale: null });
    expect(asked).toEqual([['cold']]);
    expect(l1.get(id(hot[1]!))).toBeUndefined();
    expect(hot.filter((key) => l1.get(id(key)) !== undefined)).toHaveLength(main - 1);
  });
});

describe("a request's keys started together (startMany, loadMany)", () => {
  it('asks the source once for the misses, a key given twice once; a later load waits on the batch, and after it answers without a promise', async () => {
    const { asked, request } = entity();
    const loader = request();
    loader.startMany(['a', 'b', 'a']);
    const waiting = loader.load('b');
    expect(waiting).toBeInstanceOf(Promise);
    expect(await waiting).toEqual({ value: 'value of b', stale: null });
    expect(asked).toEqual([['a', 'b']]);
    expect(loader.load('a')).toEqual({ value: 'value of a', stale: null }); // settled: a value, not a promise
    loader.startMany(['a', 'c']); // a is the request's already: only c is asked
    expect(await loader.load('c')).toEqual({ value: 'value of c', stale: null });
    expect(asked).toEqual([['a', 'b'], ['c']]);
  });

  it('a key that failed in a started batch stays failed, without asking the source again; the others answer', async () => {
    const { asked, request } = entity((key) => (key === 'bad' ? new Error('upstream said no') : `value of ${key}`));
    const loader = request();
    loader.startMany(['bad', 'good']);
    await expect(loader.load('bad')).rejects.toThrow('upstream said no');
    await expect(loader.load('bad')).rejects.toThrow('upstream said no'); // settled: rejected still
    expect(loader.load('good')).toEqual({ value: 'value of good', stale: null });
    expect(asked).toEqual([['bad', 'good']]);
  });

  it('a batch whose fetch throws fails each of its keys', async () => {
    const cache = userCache<string>(
      async () => {
        throw new Error('the fetch itself broke');
      },
      new MemoryTier(1024 * 1024),
    );
    const loader = new EntityLoader(cache, Deadline.after(5_000), new Dependencies());
    const [a, b] = loader.loadMany(['a', 'b']);
    await expect(a).rejects.toThrow('the fetch itself broke');
    await expect(b).rejects.toThrow('the fetch itself broke');
    await expect(loader.load('a')).rejects.toThrow('the fetch itself broke');
  });

  it('loadMany answers L1 hits at once and the misses from one call, in order, repeats included; each key counts as a read', async () => {
    const asked: string[][] = [];
    const cache = userCache<string>(
      async (keys) => {
        asked.push([...keys]);
        return keys.map((k) => `value of ${k}`);
      },
      new MemoryTier(1024 * 1024),
    );
    await new EntityLoader(cache, Deadline.after(5_000), new Dependencies()).load('hit'); // now in L1
    expect(asked).toEqual([['hit']]);
    const total = new ReadsInFlight();
    const loaders = new Loaders({ entity: () => cache } as unknown as Caches, Deadline.after(5_000), new Dependencies(), total);
    const answers = loaders.entity<string, string>('identity.user').loadMany(['x', 'hit', 'y', 'x']);
    expect(answers[1]).toEqual({ value: 'value of hit', stale: null });
    expect(answers[0]).toBeInstanceOf(Promise);
    expect(await Promise.all(answers)).toEqual(['x', 'hit', 'y', 'x'].map((k) => ({ value: `value of ${k}`, stale: null })));
    expect(asked).toEqual([['hit'], ['x', 'y']]);
    expect(total.count).toBe(4);
    loaders.finish();
    expect(total.count).toBe(0);
  });
});

describe("an entity key's id", () => {
  interface RangeKey {
    user: string;
    range: string;
  }
  const ranges = () =>
    testEntityCache<RangeKey, string>(
      {
        entity: 'analytics.metrics',
        source: 'analytics',
        group: (k) => k.user,
        variant: (k) => k.range,
        fetch: async (keys) => keys.map((k) => `${k.user} over ${k.range}`),
      },
      new MemoryTier(1024 * 1024),
    );

  it('is entity, group and variant whatever the group was asked with before: a longer or shorter variant, one ending the same, past the memory of last ids', () => {
    const cache = ranges();
    // Each pair shares its user; the second range ends like the first, or is as long, or is empty.
    const sequence: RangeKey[] = [
      { user: 'u1', range: '10:20' },
      { user: 'u1', range: '0:20' },
      { user: 'u1', range: '10:20' },
      { user: 'u1', range: '11:20' },
      { user: 'u1', range: '' },
      { user: 'u1', range: '20' },
      { user: 'u1', range: '11:20' },
      ...Array.from({ length: 5000 }, (_, i) => ({ user: `u${i}`, range: String(i % 3) })),
      { user: 'u1', range: '1' },
      { user: 'u1', range: '11:20' },
    ];
    for (const key of sequence) expect(cache.id(key)).toBe(`analytics.metrics\u0000${key.user}\u0000${key.range}`);
  });

  it("keeps one user's variants apart in L1: each read gets its own variant's value", async () => {
    const cache = ranges();
    const read = async (key: RangeKey) => {
      const [served] = await cache.getMany([key], Deadline.after(5_000));
      return (served as { value: string }).value;
    };
    for (const range of ['10:20', '0:20', '10:20', '11:20', '0:20']) expect(await read({ user: 'u1', range })).toBe(`u1 over ${range}`);
    expect(cache.peekFresh(cache.id({ user: 'u1', range: '0:20' }))?.value).toBe('u1 over 0:20');
  });
});

describe('an entity read that cannot start', () => {
  it('rejects rather than throws: a caller chaining on the read still hears of it', async () => {
    const cache = testEntityCache<{ user: string }, string>(
      {
        entity: 'analytics.metrics',
        source: 'analytics',
        group: (key) => {
          if (!key.user) throw new TypeError('a metrics key needs a user');
          return key.user;
        },
        variant: () => '',
        fetch: async (keys) => keys.map(() => 'value'),
      },
      new MemoryTier(1024 * 1024),
    );
    let read: Promise<unknown> | undefined;
    expect(() => (read = cache.getMany([{ user: 'u1' }, { user: '' }], Deadline.after(5_000)))).not.toThrow();
    await expect(read).rejects.toThrow('a metrics key needs a user');
    expect(await cache.getMany([{ user: 'u1' }], Deadline.after(5_000))).toEqual([{ value: 'value', stale: null }]);
  });
});
