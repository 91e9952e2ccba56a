import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { forgivenSoFar, isoFromDateString, lenientObject, lenientObjectAs, optional, readableItems } from '../src/sources/normalize.js';

/**
 * The fast paths of reading a vendor's records give what the plain reading
 * gave: canonical ISO strings are taken as they are only when formatting them
 * again would give them back; a lenient object read strictly first nulls and
 * counts a mistyped field exactly as before.
 */
describe('reading vendor records fast, with the same results', () => {
  it('an ISO timestamp reads as toISOString would write it, invalid days and other forms included', () => {
    const inputs = [
      '2026-09-30T12:34:56.789Z',
      '2024-02-29T00:00:00.000Z',
      '2026-02-29T00:00:00.000Z', // no such day: rolls over, as Date does
      '2026-02-30T10:00:00.000Z',
      '2026-04-31T00:00:00.000Z',
      '2026-02-28T24:00:00.000Z',
      '2026-09-30T12:34:56Z',
      '2026-09-30T14:34:56.789+02:00',
      'Tue, 02 Jan 2024 03:04:05 GMT',
      '1900-02-29T00:00:00.000Z',
      '2000-02-29T00:00:00.000Z',
    ];
    for (const input of inputs) expect(isoFromDateString.parse(input), input).toBe(new Date(Date.parse(input)).toISOString());
    for (const bad of ['2026-13-01T00:00:00.000Z', '2026-09-30T12:34:56.7a9Z', '2026-0a-30T12:34:56.789Z', '2026-09-30T12:60:56.789Z']) {
      expect(isoFromDateString.safeParse(bad).success, bad).toBe(false);
    }
  });

  it("vendor dates never read in the server's time zone: the asctime HTTP-date and an ISO time without offset are UTC", () => {
    const tz = process.env.TZ;
    process.env.TZ = 'Asia/Kolkata';
    try {
      for (const input of [
        'Tue, 02 Jan 2024 03:04:05 GMT',
        'Tuesday, 02-Jan-24 03:04:05 GMT',
        'Tue Jan  2 03:04:05 2024',
        '2024-01-02T03:04:05',
        '2024-01-02 03:04:05',
        '2024-01-02T08:34:05+05:30',
      ]) {
        expect(isoFromDateString.parse(input), input).toBe('2024-01-02T03:04:05.000Z');
      }
      expect(isoFromDateString.parse('2024-01-02')).toBe('2024-01-02T00:00:00.000Z');
      // RFC 5322's forms, a zoneless one read as UTC.
      for (const input of [
        'Tue, 2 Jan 2024 03:04:05 +0000',
        '2 Jan 2024 08:34:05 +0530',
        'Tue, 02 Jan 2024 03:04:05 UTC',
        'Tue, 02 Jan 2024 03:04:05',
        'Mon, 01 Jan 2024 19:04:05 PST',
        'Tue, 02-Jan-2024 03:04:05 GMT',
      ]) {
        expect(isoFromDateString.parse(input), input).toBe('2024-01-02T03:04:05.000Z');
      }
      // Not dates, though V8's Date.parse reads each as a day in 2000 or 2001.
      for (const bad of ['yesterday', '12', '1.5', '0.4', 'Mon, 1', '-1']) expect(isoFromDateString.safeParse(bad).success, bad).toBe(false);
    } finally {
      if (tz === undefined) delete process.env.TZ;
      else process.env.TZ = tz;
    }
  });

  it('a lenient object reads strictly first and falls back to nulling a mistyped optional field, counted', () => {
    const fields = { id: z.string(), name: optional(z.string()), at: optional(isoFromDateString) };
    const fast = lenientObject(fields);
    const plain = z.object(fields);
    const good = { id: 'a', name: 'Ada', at: '2026-01-02T03:04:05.000Z', extra: 1 };
    const before = forgivenSoFar();
    expect(fast.parse(good)).toEqual(plain.parse(good));
    expect(forgivenSoFar()).toBe(before);
    const mistyped = { id: 'a', name: 42, at: null };
    expect(fast.parse(mistyped)).toEqual({ id: 'a', name: null, at: null });
    expect(forgivenSoFar()).toBeGreaterThan(before);
    const broken = fast.safeParse({ name: 'no id' });
    expect(broken.success).toBe(false);
    expect(broken.error?.issues[0]?.path).toEqual(['id']);
  });

  it('a list of lenient objects read without zod layers gives what the layered schema gives: kept, nulled and counted, left out', () => {
    const fields = { id: z.string().min(1), name: optional(z.string()), at: optional(isoFromDateString) };
    const toRecord = (r: { id: string; name?: string | null; at?: string | null }) => ({ key: r.id, label: r.name ?? '(none)', at: r.at ?? null });
    const quick = readableItems(lenientObjectAs(fields, toRecord));
    const layered = readableItems(lenientObject(fields).transform(toRecord));
    const items = [
      { id: 'a', name: 'Ada', at: 'Tue, 02 Jan 2024 03:04:05 GMT', extra: 1 },
      { id: 'b', name: 42 }, // mistyped optional: nulled, counted
      { name: 'no id' }, // unreadable: left out, counted
      { id: '', name: 'empty id' }, // unreadable too
    ];
    const before = forgivenSoFar();
    const read = quick.parse(items);
    const forgiven = forgivenSoFar() - before;
    expect(read).toEqual(layered.parse(items));
    expect(forgivenSoFar() - before).toBe(2 * forgiven);
    expect(read.items).toEqual([
      { key: 'a', label: 'Ada', at: '2024-01-02T03:04:05.000Z' },
      { key: 'b', label: '(none)', at: null },
    ]);
    expect([read.unreadable, read.problem]).toEqual([2, '2.id: Invalid input: expected string, received undefined']);
    expect(forgiven).toBeGreaterThanOrEqual(2); // the mistyped field and the list with unreadable items
  });
});
