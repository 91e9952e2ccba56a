import type { SourceError } from '../errors.js';

/**
 * The normalized entities sources return: camelCase, ISO 8601 UTC timestamps,
 * typed. Vendor dialects never get past a source.
 */

export interface UserEntity {
  id: string;
  email: string | null;
  emailVerified: boolean | null;
  name: string | null;
  nickname: string | null;
  avatarUrl: string | null;
  createdAt: string | null;
  lastLoginAt: string | null;
  /**
   * Set by the resolvers, never by a source or a cache: identity failed for a
   * user whose id is known, so its fields answer with this error while every
   * other vendor's fields resolve as usual.
   */
  identityError?: SourceError;
}

export type Granularity = 'HOUR' | 'DAY';

export interface MetricsRange {
  /** Unix seconds, inclusive. */
  readonly fromSec: number;
  /** Unix seconds, exclusive. */
  readonly toSec: number;
  readonly granularity: Granularity;
}

export interface MetricPointEntity {
  at: string;
  pageViews: number;
  sessions: number;
}

export interface MetricsEntity {
  pageViews: number;
  sessions: number;
  avgSessionSeconds: number;
  conversionRate: number;
  lastActiveAt: string | null;
  series: MetricPointEntity[];
}

export interface EventEntity {
  id: string;
  type: string;
  occurredAt: string;
  properties: Record<string, unknown>;
}

export interface EventPage {
  events: EventEntity[];
  /** The vendor's cursor for the page after this one; null on the last page. */
  nextCursor: string | null;
}

export type NotificationChannel = 'EMAIL' | 'PUSH' | 'IN_APP' | 'OTHER';
/** The channels a notification can be sent on: OTHER stands for ones a vendor added that this server does not know. */
export type SendableChannel = Exclude<NotificationChannel, 'OTHER'>;

export interface NotificationEntity {
  id: string;
  userId: string;
  title: string;
  body: string;
  channel: NotificationChannel;
  read: boolean;
  createdAt: string;
}

/** A window of an offset-paged list. */
export interface OffsetPage<T> {
  items: T[];
  /** Where the vendor's list goes on after each item, when a repeated one was left out (else the window's offset + index + 1). */
  after?: number[];
  totalCount: number;
  /** The vendor's own count of the list, when it said one (notifications' X-Total-Count): what tells a window that the list changed. */
  vendorTotal?: number;
  hasNextPage: boolean;
  /** The vendor lists nothing at or past this position (its paging limit), once known: no next page there, and a window past it is a client's mistake. */
  listsAtMost?: number;
}

/** A record a vendor's change feed lists: its id, when it last changed (ISO; null when unreadable), and the record as our entity. */
export interface ChangedRecord<T> {
  id: string;
  updatedAt: string | null;
  value: T;
}

/** One page of a change feed, oldest change first; `unreadable`: records on it that could not be read (no id). */
export interface ChangedPage<T> {
  records: ChangedRecord<T>[];
  unreadable: number;
  more: boolean;
}

/** One window of the list of all users. */
export interface UserPageKey {
  offset: number;
  first: number;
}

/** What one metrics lookup asks: a user over a range. */
export interface MetricsKey {
  userId: string;
  range: MetricsRange;
}

/** One window of a user's notification list. */
export interface NotificationPageKey {
  userId: string;
  offset: number;
  first: number;
  unreadOnly: boolean;
}

/** One vendor page of a user's events. */
export interface EventPageKey {
  userId: string;
  limit: number;
  cursor: string | null;
}
