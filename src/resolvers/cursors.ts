import type { EventPosition } from '../sources/analytics/events-window.js';
import type { NotificationPosition } from '../sources/notifications/notifications-window.js';
import { badUserInput } from '../errors.js';
import { isCount } from '../sources/normalize.js';

/**
 * Opaque cursors. Clients pass them back as `after`; they are base64url so no
 * client is tempted to build one. Each kind is tagged so a cursor from one
 * connection is refused by another.
 */
type Kind = 'users' | 'notifications' | 'events' | 'deliveries';

function encode(kind: Kind, payload: unknown): string {
  return Buffer.from(JSON.stringify([kind, payload])).toString('base64url');
}

function decode(kind: Kind, cursor: string): unknown {
  try {
    const [k, payload] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [unknown, unknown];
    if (k === kind) return payload;
  } catch {
    // fall through
  }
  throw badUserInput(`"after" is not a cursor of this connection.`, 'after');
}

type OffsetKind = 'users' | 'deliveries';

/** Cursors of the first positions, made once: every page of every list starts there (and base64 per edge showed in profiles). */
const MEMO_OFFSETS = 1024;
const offsetCursors = new Map<OffsetKind, string[]>();

/** The position after an edge of an offset-paged list. */
export function offsetCursor(kind: OffsetKind, offset: number): string {
  if (offset >= MEMO_OFFSETS || !Number.isInteger(offset) || offset < 0) return encode(kind, offset);
  let memo = offsetCursors.get(kind);
  if (!memo) offsetCursors.set(kind, (memo = []));
  return (memo[offset] ??= encode(kind, offset));
}

/** The offset to continue from; 0 when there is no cursor. */
export function offsetFrom(kind: OffsetKind, after: string | null | undefined): number {
  if (after === null || after === undefined) return 0;
  const offset = decode(kind, after);
  if (!isOffset(offset)) throw badUserInput(`"after" is not a cursor of this connection.`, 'after');
  return offset;
}

/**
 * The position after a notification: its offset, and the notification itself
 * (id, creation in Unix seconds) with the vendor's count of the list then, by
 * which the next window finds its place again when notifications arrive or
 * leave the list meanwhile.
 */
export function notificationCursor(position: NotificationPosition): string {
  const { offset, anchor } = position;
  return anchor ? encode('notifications', [offset, anchor.id, anchor.createdSec, anchor.total]) : encode('notifications', offset);
}

/** Where a window of notifications starts; offset 0 when there is no cursor. A bare offset (a cursor made before anchors) is still read. */
export function notificationsFrom(after: string | null | undefined): NotificationPosition {
  if (after === null || after === undefined) return { offset: 0 };
  const payload = decode('notifications', after);
  if (isOffset(payload)) return { offset: payload };
  if (
    Array.isArray(payload) &&
    payload.length === 4 &&
    isOffset(payload[0]) &&
    typeof payload[1] === 'string' &&
    payload[1] !== '' &&
    Number.isFinite(payload[2]) &&
    isCount(payload[3])
  ) {
    return { offset: payload[0], anchor: { id: payload[1], createdSec: payload[2] as number, total: payload[3] } };
  }
  throw badUserInput(`"after" is not a cursor of this connection.`, 'after');
}

function isOffset(value: unknown): value is number {
  return isCount(value) && value <= 1_000_000;
}

/** A position in a vendor-cursored list (see sources/analytics/events-window.ts). */
export type VendorPosition = EventPosition;

export function eventsCursor(position: VendorPosition): string {
  return encode('events', [position.vendorCursor, position.skip]);
}

export function eventsFrom(after: string | null | undefined): VendorPosition {
  if (after === null || after === undefined) return { vendorCursor: null, skip: 0 };
  const payload = decode('events', after);
  if (Array.isArray(payload) && (payload[0] === null || typeof payload[0] === 'string') && Number.isInteger(payload[1]) && payload[1] >= 0) {
    return { vendorCursor: payload[0] as string | null, skip: payload[1] as number };
  }
  throw badUserInput(`"after" is not a cursor of this connection.`, 'after');
}

export function checkFirst(first: number | null | undefined, max: number, fallback = 20): number {
  const n = first ?? fallback;
  if (!Number.isInteger(n) || n < 1 || n > max) throw badUserInput(`"first" must be between 1 and ${max}.`, 'first');
  return n;
}
