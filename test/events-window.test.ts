import { describe, expect, it } from 'vitest';
import { readEventsWindow } from '../src/sources/analytics/events-window.js';
import type { EventPage, EventPageKey } from '../src/sources/models.js';

/** The analytics cursor dialect read into offset windows, against vendors that page oddly. */
const event = (n: number) => ({ id: String(n), type: 'page_view', occurredAt: '2026-01-01T00:00:00.000Z', properties: {} });

describe('events windows over cursor pages', () => {
  it('a next cursor that names the page just read ends the list: no event twice, no call past it', async () => {
    const asked: EventPageKey[] = [];
    // Pages of 3; the last one answers with its own cursor again instead of null.
    const pages: Record<string, EventPage> = {
      start: { events: [event(1), event(2), event(3)], nextCursor: 'p2' },
      p2: { events: [event(4), event(5)], nextCursor: 'p2' },
    };
    const load = (key: EventPageKey) => {
      asked.push(key);
      return pages[key.cursor ?? 'start']!;
    };
    const window = await readEventsWindow('u', 10, { vendorCursor: null, skip: 0 }, load);
    expect(window!.items.map((i) => i.event.id)).toEqual(['1', '2', '3', '4', '5']);
    expect(window!.hasNextPage).toBe(false);
    expect(asked.map((k) => k.cursor)).toEqual([null, 'p2']);
    // The last event's position reads on inside that page, not from its start again.
    expect(window!.items.at(-1)!.after).toEqual({ vendorCursor: 'p2', skip: 2 });
    const rest = await readEventsWindow('u', 10, window!.items.at(-1)!.after, load);
    expect(rest).toEqual({ items: [], hasNextPage: false });
  });

  it('an event listed twice (a replica, or a next page that starts with the last one) is in the window once; the one before it goes on after it', async () => {
    const pages: Record<string, EventPage> = {
      start: { events: [event(1), event(2), event(2), event(3)], nextCursor: 'p2' },
      p2: { events: [event(3), event(4), event(5)], nextCursor: null },
    };
    const load = (key: EventPageKey) => pages[key.cursor ?? 'start']!;
    const window = await readEventsWindow('u', 4, { vendorCursor: null, skip: 0 }, load);
    expect(window!.items.map((i) => i.event.id)).toEqual(['1', '2', '3', '4']);
    // '2' goes on past its repeat; '3' (the first page's last) past the next page's repeat of it.
    expect(window!.items.map((i) => i.after)).toEqual([
      { vendorCursor: null, skip: 1 },
      { vendorCursor: null, skip: 3 },
      { vendorCursor: 'p2', skip: 1 },
      { vendorCursor: 'p2', skip: 2 },
    ]);
    expect(window!.hasNextPage).toBe(true);
    const rest = await readEventsWindow('u', 4, window!.items.at(-1)!.after, load);
    expect(rest!.items.map((i) => i.event.id)).toEqual(['5']);
  });
});
