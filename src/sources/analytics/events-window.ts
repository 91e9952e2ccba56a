import type { MaybePromise } from '../../maybe-promise.js';
import type { EventEntity, EventPage, EventPageKey } from '../models.js';
import { MAX_EVENTS_PER_CALL } from './analytics-source.js';

/** A position in the vendor's cursor-paged event list: the cursor of a page, and how many of that page come before. */
export interface EventPosition {
  vendorCursor: string | null;
  skip: number;
}

export interface EventsWindow {
  /** Each event with the position right after it (what a client's `after` names). */
  items: { event: EventEntity; after: EventPosition }[];
  hasNextPage: boolean;
}

/** A window is read in at most this many vendor calls; past it, it ends early with hasNextPage. */
const MAX_PAGES_PER_WINDOW = 10;

/** The first vendor page a window of `count` from `from` asks for (the prefetch starts the same load). */
export function firstEventPage(userId: string, count: number, from: EventPosition): EventPageKey {
  return { userId, limit: Math.min(MAX_EVENTS_PER_CALL, from.skip + count), cursor: from.vendorCursor };
}

/**
 * `count` events from `from`, over the vendor's cursor pages (newest first):
 * the analytics dialect, kept here so the resolver only shapes the answer.
 * `loadPage` is the caller's loader. Null when the vendor does not know the
 * user; a page that vanishes mid-window ends it.
 */
export async function readEventsWindow(
  userId: string,
  count: number,
  from: EventPosition,
  loadPage: (key: EventPageKey) => MaybePromise<EventPage | null>,
): Promise<EventsWindow | null> {
  const items: EventsWindow['items'] = [];
  const ids = new Set<string>();
  let position = from;
  for (let calls = 0; calls < MAX_PAGES_PER_WINDOW; calls++) {
    const { vendorCursor, skip } = position;
    const page = await loadPage(
      calls === 0 ? firstEventPage(userId, count, from) : { userId, limit: Math.min(MAX_EVENTS_PER_CALL, skip + count - items.length), cursor: vendorCursor },
    );
    if (page === null) return calls === 0 ? null : { items, hasNextPage: false };
    // A next cursor that names the page just read would give its events again: the list ends there.
    const next = page.nextCursor === vendorCursor ? null : page.nextCursor;
    const usable = page.events.slice(skip);
    let used = 0;
    for (; used < usable.length && items.length < count; used++) {
      const event = usable[used]!;
      const consumedPage = skip + used + 1 === page.events.length && next !== null;
      const after = consumedPage ? { vendorCursor: next, skip: 0 } : { vendorCursor, skip: skip + used + 1 };
      // An event the window already holds (a replica repeating a row, a next page starting with the last one): left
      // out, and the event before it goes on after it, so the next window does not start with it either.
      if (ids.has(event.id)) {
        if (items.length > 0) items[items.length - 1]!.after = after;
        continue;
      }
      ids.add(event.id);
      items.push({ event, after });
    }
    if (items.length >= count) return { items, hasNextPage: used < usable.length || next !== null };
    if (next === null) return { items, hasNextPage: false };
    position = { vendorCursor: next, skip: 0 };
  }
  return { items, hasNextPage: true };
}
