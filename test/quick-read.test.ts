import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { count, forgivenSoFar, isoFromDateString, isoFromUnixSeconds, lenientObject, lenientObjectAs, optional, readableEntries, readableItems } from '../src/sources/normalize.js';
import { quickRead, quickReaderOf, UNREAD } from '../src/sources/quick-read.js';

/** A deterministic stream of numbers in [0, 1). */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

const wrongValues: unknown[] = [null, undefined, '', 'x', '2026-13-01T00:00:00.000Z', 'Tue, 02 Jan 2024 03:04:05 GMT', 0, -1, 1.5, 2 ** 53, 0.5, true, [], ['a'], {}, { a: 1 }];

/** `good` with one or two of its fields (at any depth) changed, dropped or joined by an unknown one. */
function mutate(good: Record<string, unknown>, next: () => number): Record<string, unknown> {
  const copy: Record<string, unknown> = structuredClone(good);
  const keys = Object.keys(copy);
  for (let n = 0; n < 1 + Math.floor(next() * 2); n++) {
    const key = keys[Math.floor(next() * keys.length)]!;
    const choice = next();
    if (choice < 0.15) delete copy[key];
    else if (choice < 0.25) copy[`extra_${n}`] = wrongValues[Math.floor(next() * wrongValues.length)];
    else if (choice < 0.4 && typeof copy[key] === 'object' && copy[key] !== null && !Array.isArray(copy[key])) copy[key] = mutate(copy[key] as Record<string, unknown>, next);
    else copy[key] = wrongValues[Math.floor(next() * wrongValues.length)];
  }
  return copy;
}

const isoDate = z.string().transform((s, ctx) => {
  const ms = Date.parse(s);
  if (Number.isNaN(ms)) {
    ctx.addIssue({ code: 'custom', message: 'not a date' });
    return z.NEVER;
  }
  return new Date(ms).toISOString();
});

/** Every kind of schema the quick reader knows, in plain zod: the reference is zod's own parse. */
const everyKind = z.object({
  id: z.string().min(1),
  short: z.string().max(3).optional(),
  email: z.string().nullish(),
  verified: z.boolean(),
  total: z.number().int().nonnegative(),
  rate: z.number().min(0).max(1),
  above: z.number().gt(0).lt(10).optional(),
  channel: z.enum(['email', 'push', 'in_app']),
  tags: z.array(z.string()).default([]),
  even: z.custom<number>((v) => typeof v === 'number' && v % 2 === 0).optional(),
  at: isoDate,
  seen: isoDate.nullish(),
  extra: z.unknown().optional(),
  nested: z.object({ n: count, label: z.string().nullable() }),
});

const goodKind = {
  id: 'u1',
  short: 'ab',
  email: 'a@example.com',
  verified: true,
  total: 3,
  rate: 0.25,
  above: 5,
  channel: 'push',
  tags: ['a', 'b'],
  even: 4,
  at: '2026-01-02T03:04:05Z',
  seen: null,
  extra: { anything: [1] },
  nested: { n: 0, label: 'x' },
  unknown_field: 'ignored',
};

describe('reading vendor JSON without zod, with the same meaning', () => {
  it('reads what zod reads, as zod reads it, and refuses what zod refuses, over 3,000 changed records', () => {
    const next = random(7);
    let quick = 0;
    let zodOnly = 0;
    for (let i = 0; i < 3_000; i++) {
      const input = i === 0 ? goodKind : mutate(goodKind, next);
      const read = quickRead(everyKind, input);
      const parsed = everyKind.safeParse(input);
      if (read === UNREAD) {
        // The quick path may only ever be stricter than zod, never a different answer: here it is exact.
        expect(parsed.success, JSON.stringify(input)).toBe(false);
        zodOnly++;
      } else {
        expect(parsed.success, JSON.stringify(input)).toBe(true);
        expect(read).toStrictEqual(parsed.data);
        quick++;
      }
    }
    // Both outcomes are exercised: the mutations break about half of the records.
    expect(quick).toBeGreaterThan(500);
    expect(zodOnly).toBeGreaterThan(500);
  });

  it('a transform that refuses through ctx.issues, as zod allows, is unread, and the next value reads', () => {
    const even = z.number().transform((n, ctx) => {
      if (n % 2 !== 0) ctx.issues.push({ code: 'custom', message: 'odd', input: n });
      return n;
    });
    expect(quickRead(even, 3)).toBe(UNREAD);
    expect(even.safeParse(3).success).toBe(false);
    expect(quickRead(even, 4)).toBe(4);
  });

  it('a default is a fresh value each time, as zod gives it', () => {
    const schema = z.object({ tags: z.array(z.string()).default([]) });
    const a = quickRead(schema, {}) as { tags: string[] };
    const b = quickRead(schema, {}) as { tags: string[] };
    expect(a).toEqual({ tags: [] });
    expect(a.tags).not.toBe(b.tags);
  });

  it('a schema with a part it does not know is left to zod, whole', () => {
    expect(quickReaderOf(z.object({ id: z.union([z.string(), z.number()]) }))).toBeUndefined();
    expect(quickReaderOf(z.object({ at: z.string().email() }))).toBeUndefined();
    expect(quickReaderOf(z.array(z.object({ kind: z.literal('a') })))).toBeUndefined();
    for (const schema of [
      z.object({ a: z.string() }).refine((o) => o.a !== ''),
      z.array(z.string()).min(1),
      z.coerce.number(),
      z.object({ a: z.string() }).strict(),
      z.looseObject({ a: z.string() }),
      z.boolean().refine((b) => b),
    ]) {
      expect(quickReaderOf(schema)).toBeUndefined();
    }
    expect(quickRead(z.object({ id: z.union([z.string(), z.number()]) }), { id: 1 })).toBe(UNREAD);
    // A lenient field's value that only its catch reads is zod's to forgive.
    const lenient = z.object({ n: optional(z.number()) });
    expect(quickRead(lenient, { n: 'x' })).toBe(UNREAD);
    expect(lenient.parse({ n: 'x' })).toEqual({ n: null });
    expect(quickRead(lenient, { n: 2 })).toEqual({ n: 2 });
  });

  it("a vendor's page reads quickly, a mistyped field nulled and counted through zod, an unreadable record left out", () => {
    const user = lenientObjectAs(
      {
        user_id: z.string().min(1),
        email: optional(z.string()),
        email_verified: optional(z.boolean()),
        created_at: optional(isoFromDateString),
        logins_count: z.unknown().optional(),
      },
      (u) => ({ id: u.user_id, email: u.email ?? null, verified: u.email_verified ?? null, createdAt: u.created_at ?? null }),
    );
    const page = z.object({ start: z.unknown().optional(), total: count, users: readableItems(user) });
    const users = [
      { user_id: 'a', email: 'a@x', email_verified: true, created_at: '2026-01-02T03:04:05.000Z', logins_count: 3, extra: 1 },
      { user_id: 'b', email: null, created_at: 'Tue, 02 Jan 2024 03:04:05 GMT' },
    ];

    let before = forgivenSoFar();
    const clean = quickRead(page, { start: 0, total: 2, users });
    expect(clean).toStrictEqual(page.parse({ start: 0, total: 2, users }));
    expect(clean).toEqual({
      start: 0,
      total: 2,
      users: {
        items: [
          { id: 'a', email: 'a@x', verified: true, createdAt: '2026-01-02T03:04:05.000Z' },
          { id: 'b', email: null, verified: null, createdAt: '2024-01-02T03:04:05.000Z' },
        ],
        unreadable: 0,
        problem: undefined,
      },
    });
    expect(forgivenSoFar()).toBe(before);

    before = forgivenSoFar();
    const forgiving = quickRead(page, { total: 3, users: [...users, { user_id: 'c', email: 42 }, { email: 'no id' }] }) as {
      users: { items: { email: unknown }[]; unreadable: number; problem: string };
    };
    expect(forgiving.users.items.map((u) => u.email)).toEqual(['a@x', null, null]);
    expect(forgiving.users.unreadable).toBe(1);
    expect(forgiving.users.problem).toBe('3.user_id: Invalid input: expected string, received undefined');
    expect(forgivenSoFar()).toBeGreaterThan(before);

    expect(quickRead(page, { total: -1, users })).toBe(UNREAD);
    expect(page.safeParse({ total: -1, users }).success).toBe(false);
  });

  it('a map of counts and a row with an optional timestamp and a defaulted series read quickly, as zod reads them', () => {
    const counts = z.object({ counts: readableEntries(count) });
    const input = { counts: { a: 1, b: 0, c: -2, d: 'x' } };
    const read = quickRead(counts, input) as { counts: { entries: Map<string, number>; unreadable: Map<string, string> } };
    expect([...read.counts.entries]).toEqual([
      ['a', 1],
      ['b', 0],
    ]);
    expect([...read.counts.unreadable.keys()]).toEqual(['c', 'd']);
    expect(read).toStrictEqual(counts.parse(input));

    const row = lenientObject({ user_id: z.string(), views: count, last_active: optional(isoFromUnixSeconds), series: z.array(z.number()).default([]) });
    const rows = z.object({ data: readableItems(row), missing: optional(z.array(z.string())) });
    const body = {
      data: [
        { user_id: 'a', views: 2, last_active: 1_700_000_000 },
        { user_id: 'b', views: 1, last_active: null, series: [1, 2] },
      ],
      missing: ['z'],
    };
    const quick = quickRead(rows, body);
    expect(quick).not.toBe(UNREAD);
    expect(quick).toStrictEqual(rows.parse(body));
    expect((quick as { data: { items: { last_active: unknown; series: unknown }[] } }).data.items).toEqual([
      { user_id: 'a', views: 2, last_active: '2023-11-14T22:13:20.000Z', series: [] },
      { user_id: 'b', views: 1, last_active: null, series: [1, 2] },
    ]);
  });
});
