import { mapMaybePromise, type MaybePromise } from '../../maybe-promise.js';
import type { NotificationEntity, NotificationPageKey, OffsetPage } from '../models.js';

/**
 * The notification a window goes on after: its id, its creation in Unix
 * seconds (as its HTTP-date says it), and how many the list held then, by the
 * vendor's own count (X-Total-Count).
 */
export interface NotificationAnchor {
  id: string;
  createdSec: number;
  total: number;
}

/** Where a window starts: an offset in the vendor's list, and the notification before it, when a cursor names one. */
export interface NotificationPosition {
  offset: number;
  anchor?: NotificationAnchor;
}

export interface NotificationsWindow {
  /** Each notification with the offset right after it (see positionAfter). */
  items: { node: NotificationEntity; after: number }[];
  totalCount: number;
  /** The vendor's count of the list, when it said one. */
  vendorTotal: number | undefined;
  hasNextPage: boolean;
}

/**
 * The position after a window's notification (what a client's `after` names):
 * made only when a cursor is asked for (most queries never do).
 */
export function positionAfter(node: NotificationEntity, offset: number, vendorTotal: number | undefined): NotificationPosition {
  return vendorTotal === undefined ? { offset } : { offset, anchor: { id: node.id, createdSec: createdSec(node), total: vendorTotal } };
}

type LoadPage = (key: NotificationPageKey) => MaybePromise<OffsetPage<NotificationEntity>>;

/**
 * How far back or ahead of a cursor's offset its notification is looked for
 * when the list moved under it: one more window of at most this many (a vendor
 * page's most). Further than that (more read or arrived between two windows),
 * the window starts where the nearest part of the list says.
 */
const SEARCH_SPAN = 100;

/** The window a position asks for first (the prefetch starts the same load). */
export function firstNotificationPage(userId: string, count: number, from: NotificationPosition, unreadOnly: boolean): NotificationPageKey {
  return { userId, offset: from.offset, first: count, unreadOnly };
}

/**
 * `count` notifications after `from`: the notifications dialect (1-based pages
 * of a newest-first list), kept here so the resolver only shapes the answer.
 * The vendor pages by offset, so a notification that arrives between two
 * windows shifts the next one by one (its first is the last one shown again),
 * and one read (under `unreadOnly`) or deleted shifts it back (one is never
 * shown). A cursor names its notification and the count of the list it was
 * in: while the vendor's count is the same, the window at its offset is read
 * as always (one load); once it changed, the window starts after the cursor's
 * notification wherever it is now, or, when it left the list, at the first
 * notification older than it (a window before or after this one is read to
 * find it). A vendor that does not say its count, or whose list is not newest
 * first, is read by offset alone. `loadPage` is the caller's loader.
 */
export function readNotificationsWindow(userId: string, count: number, from: NotificationPosition, unreadOnly: boolean, loadPage: LoadPage): MaybePromise<NotificationsWindow> {
  const key = firstNotificationPage(userId, count, from, unreadOnly);
  const { anchor } = from;
  // A cached page answers without a promise; only a list whose count changed under a cursor reads more.
  return mapMaybePromise(loadPage(key), (page) =>
    anchor === undefined || page.vendorTotal === undefined || page.vendorTotal === anchor.total || !newestFirst(page.items)
      ? windowOf(page, key, 0, count)
      : windowMoved(anchor, key, page, loadPage),
  );
}

/** The window after the anchor, in a list whose count changed since the cursor was made. */
async function windowMoved(anchor: NotificationAnchor, key: NotificationPageKey, page: OffsetPage<NotificationEntity>, loadPage: LoadPage): Promise<NotificationsWindow> {
  const start = (await placeOf(anchor, page, key, loadPage)) ?? key.offset;
  const within = start - key.offset;
  // The list moved by less than the window read holds to spare: it has what comes after the anchor.
  if (within >= 0 && page.after === undefined && (within + key.first <= page.items.length || !page.hasNextPage)) return windowOf(page, key, within, key.first);
  const moved: NotificationPageKey = { ...key, offset: start };
  return windowOf(await loadPage(moved), moved, 0, key.first);
}

/** Where the list goes on after the anchor, as read from `page` (and one window before or after it); undefined when it cannot tell. */
async function placeOf(anchor: NotificationAnchor, page: OffsetPage<NotificationEntity>, key: NotificationPageKey, loadPage: LoadPage): Promise<number | undefined> {
  const found = placeIn(anchor, page, key);
  if (typeof found === 'number') return found;
  if (found === 'earlier') {
    // The window starts past the anchor's place (notifications before it left the list, or ones after it): it is in
    // the window before, or right at this one's start.
    const before: NotificationPageKey = { ...key, offset: Math.max(0, key.offset - SEARCH_SPAN), first: Math.min(SEARCH_SPAN, key.offset) };
    const place = placeIn(anchor, await loadPage(before), before);
    if (place === 'later') return key.offset;
    return place === 'earlier' ? before.offset : place;
  }
  // Every notification of the window is newer than the cursor's: more arrived than the window holds.
  if (!page.hasNextPage) return undefined;
  const ahead: NotificationPageKey = { ...key, offset: endOf(page, key), first: SEARCH_SPAN };
  const place = placeIn(anchor, await loadPage(ahead), ahead);
  return typeof place === 'number' ? place : undefined;
}

/**
 * The position after the anchor in a window of the list: after the anchor
 * where the window holds it, else at the first notification older than it;
 * 'earlier' when the window's first is already older or the window is empty
 * (the place is at or before its start), 'later' when none is older.
 */
function placeIn(anchor: NotificationAnchor, page: OffsetPage<NotificationEntity>, key: NotificationPageKey): number | 'earlier' | 'later' {
  const { items } = page;
  if (items.length === 0) return 'earlier';
  const at = items.findIndex((n) => n.id === anchor.id);
  if (at >= 0) return afterItem(page, key, at);
  // Creation instants are whole seconds: one as old as the anchor's reads as before it (shown already, or arrived since).
  const older = items.findIndex((n) => createdSec(n) < anchor.createdSec);
  if (older < 0) return 'later';
  return older === 0 ? 'earlier' : afterItem(page, key, older - 1);
}

function windowOf(page: OffsetPage<NotificationEntity>, key: NotificationPageKey, skip: number, count: number): NotificationsWindow {
  const items = page.items.slice(skip, skip + count).map((node, i) => ({ node, after: afterItem(page, key, skip + i) }));
  return { items, totalCount: page.totalCount, vendorTotal: page.vendorTotal, hasNextPage: page.hasNextPage || page.items.length > skip + count };
}

/** Where the vendor's list goes on after the window's item `i`. */
function afterItem(page: OffsetPage<NotificationEntity>, key: NotificationPageKey, i: number): number {
  return page.after?.[i] ?? key.offset + i + 1;
}

function endOf(page: OffsetPage<NotificationEntity>, key: NotificationPageKey): number {
  return page.items.length === 0 ? key.offset : afterItem(page, key, page.items.length - 1);
}

/** Whether the items come newest first, as the contract says (a vendor that breaks it is read by offset alone). */
function newestFirst(items: readonly NotificationEntity[]): boolean {
  for (let i = 1; i < items.length; i++) if (createdSec(items[i]!) > createdSec(items[i - 1]!)) return false;
  return true;
}

function createdSec(n: NotificationEntity): number {
  return Math.floor(Date.parse(n.createdAt) / 1000);
}
