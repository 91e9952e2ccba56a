import { canReadPrivate } from '../viewer.js';
import { badUserInput, forbidden } from '../errors.js';
import type { UserResolvers } from '../generated/resolvers.js';
import { MAX_EVENTS_PER_CALL } from '../sources/analytics/analytics-source.js';
import { firstEventPage, readEventsWindow, type EventPosition } from '../sources/analytics/events-window.js';
import type { GatewayContext } from '../context.js';
import { mapMaybePromise } from '../maybe-promise.js';
import type { Granularity, MetricsKey, MetricsRange, NotificationEntity, UserEntity } from '../sources/models.js';
import { firstNotificationPage, positionAfter, readNotificationsWindow, type NotificationPosition } from '../sources/notifications/notifications-window.js';
import { checkFirst, eventsCursor, eventsFrom, notificationCursor, notificationsFrom } from './cursors.js';

/** An edge whose cursor is made when asked: a notification's names it (not a memoized offset), and most queries never ask. */
class NotificationEdge {
  constructor(
    readonly node: NotificationEntity,
    private readonly after: number,
    private readonly vendorTotal: number | undefined,
  ) {}

  get cursor(): string {
    return notificationCursor(positionAfter(this.node, this.after, this.vendorTotal));
  }
}

/** A window's page info, its end cursor made when asked (a getter on a class, not one made per object literal). */
class NotificationPageInfo {
  constructor(
    readonly hasNextPage: boolean,
    private readonly last: NotificationEdge | undefined,
  ) {}

  get endCursor(): string | null {
    return this.last?.cursor ?? null;
  }
}

/** Public: id, name, nickname, avatarUrl. Everything else only for the user themselves or an admin. */
function mustOwn(user: UserEntity, ctx: GatewayContext, field: string): void {
  if (!canReadPrivate(ctx.viewer, user.id)) throw forbidden(`"${field}"`);
}

const HOUR_S = 3600;
const DAY_S = 86_400;
const MAX_RANGE_S: Record<Granularity, number> = { HOUR: 31 * DAY_S, DAY: 366 * DAY_S };
const DEFAULT_RANGE_S: Record<Granularity, number> = { HOUR: DAY_S, DAY: 30 * DAY_S };

/** The end of the hour `nowMs` is in, in Unix seconds: a default range's `to`. */
function currentHourEnd(nowMs: number): number {
  return Math.ceil(nowMs / 1000 / HOUR_S) * HOUR_S;
}

/** [from, to) in Unix seconds; by default the window ending with the current hour, so it is stable for an hour. */
export function metricsRange(from: string | null | undefined, to: string | null | undefined, granularity: Granularity, nowMs = Date.now()): MetricsRange {
  const toSec = to ? Math.floor(Date.parse(to) / 1000) : currentHourEnd(nowMs);
  const fromSec = from ? Math.floor(Date.parse(from) / 1000) : toSec - DEFAULT_RANGE_S[granularity];
  if (fromSec >= toSec) throw badUserInput('"from" must be before "to".', 'from');
  if (toSec - fromSec > MAX_RANGE_S[granularity]) {
    throw badUserInput(`The range may span at most ${MAX_RANGE_S[granularity] / DAY_S} days at ${granularity} granularity.`, 'to');
  }
  return { fromSec, toSec, granularity };
}

export type UserArgs<K extends keyof UserResolvers> = Parameters<Extract<NonNullable<UserResolvers[K]>, (...a: never[]) => unknown>>[1];

/**
 * The last range made, with the arguments it was made from. A list's metrics fields each get their arguments afresh
 * (graphql-jit builds them per call), and one range object for all of them makes its key's string once (analytics'
 * rangeKey) instead of once a user. Kept while the arguments still mean it: a default `to` moves with the hour.
 */
let lastRange: { from: string | null | undefined; to: string | null | undefined; granularity: Granularity; range: MetricsRange } | undefined;

function rangeOf(args: UserArgs<'metrics'>, nowMs = Date.now()): MetricsRange {
  const { from, to } = args;
  const granularity = args.granularity ?? 'DAY';
  const last = lastRange;
  if (last !== undefined && last.from === from && last.to === to && last.granularity === granularity && (to || currentHourEnd(nowMs) === last.range.toSec)) {
    return last.range;
  }
  const range = metricsRange(from, to, granularity, nowMs);
  lastRange = { from, to, granularity, range };
  return range;
}

/** The loader keys a field's arguments map to; shared with the prefetch so both ask for the same thing. */
export const userFieldKeys = {
  /** Keys of equal arguments share one range (see rangeOf). */
  metrics: (userId: string, args: UserArgs<'metrics'>): MetricsKey => ({ userId, range: rangeOf(args) }),
  /** How many notifications, from where (the window is read by the notifications folder's readNotificationsWindow). */
  notifications: ({ first, after, unreadOnly }: UserArgs<'notifications'>): { count: number; from: NotificationPosition; unreadOnly: boolean } => ({
    count: checkFirst(first, 100),
    from: notificationsFrom(after),
    unreadOnly: unreadOnly ?? false,
  }),
  /** How many events, from where (the window is read by the analytics folder's readEventsWindow). */
  events: ({ first, after }: UserArgs<'events'>): { count: number; from: EventPosition } => ({ count: checkFirst(first, MAX_EVENTS_PER_CALL), from: eventsFrom(after) }),
};

/** A field identity gives: its error when identity failed for this user (see Query's orIdentityError). */
function fromIdentity<F extends 'name' | 'nickname' | 'avatarUrl' | 'email' | 'emailVerified' | 'createdAt' | 'lastLoginAt'>(user: UserEntity, field: F): UserEntity[F] {
  if (user.identityError) throw user.identityError;
  return user[field];
}

/**
 * The per-user fields read through a loader, started for many users at once
 * by the prefetch (prefetch.ts): each field's keys for all the users, as one
 * batch (EntityLoader.startMany), made by userFieldKeys like the keys the
 * field resolvers below then load (the events field: its first vendor page;
 * the resolver pages on from it).
 */
export const userFieldStarts = {
  metrics: (ids: readonly string[], args: UserArgs<'metrics'>, ctx: GatewayContext) => ctx.loaders.metrics.startMany(ids.map((userId) => userFieldKeys.metrics(userId, args))),
  unreadNotificationCount: (ids: readonly string[], _args: unknown, ctx: GatewayContext) => ctx.loaders.unreadCount.startMany(ids),
  notifications: (ids: readonly string[], args: UserArgs<'notifications'>, ctx: GatewayContext) => {
    const { count, from, unreadOnly } = userFieldKeys.notifications(args);
    ctx.loaders.notificationPage.startMany(ids.map((id) => firstNotificationPage(id, count, from, unreadOnly)));
  },
  events: (ids: readonly string[], args: UserArgs<'events'>, ctx: GatewayContext) => {
    const { count, from } = userFieldKeys.events(args);
    ctx.loaders.eventPage.startMany(ids.map((id) => firstEventPage(id, count, from)));
  },
};

export const User: UserResolvers = {
  name: (user) => fromIdentity(user, 'name'),
  nickname: (user) => fromIdentity(user, 'nickname'),
  avatarUrl: (user) => fromIdentity(user, 'avatarUrl'),
  email: (user, _args, ctx) => (mustOwn(user, ctx, 'email'), fromIdentity(user, 'email')),
  emailVerified: (user, _args, ctx) => (mustOwn(user, ctx, 'emailVerified'), fromIdentity(user, 'emailVerified')),
  createdAt: (user, _args, ctx) => (mustOwn(user, ctx, 'createdAt'), fromIdentity(user, 'createdAt')),
  lastLoginAt: (user, _args, ctx) => (mustOwn(user, ctx, 'lastLoginAt'), fromIdentity(user, 'lastLoginAt')),

  // Not async: a cached field answers without a promise (see EntityLoader).
  metrics: (user, args, ctx, info) => {
    mustOwn(user, ctx, 'metrics');
    return ctx.stale.take(ctx.loaders.metrics.load(userFieldKeys.metrics(user.id, args)), info);
  },

  unreadNotificationCount: (user, _args, ctx, info) => {
    mustOwn(user, ctx, 'unreadNotificationCount');
    return ctx.stale.take(ctx.loaders.unreadCount.load(user.id), info);
  },

  notifications: (user, args, ctx, info) => {
    mustOwn(user, ctx, 'notifications');
    const { count, from, unreadOnly } = userFieldKeys.notifications(args);
    const window = readNotificationsWindow(user.id, count, from, unreadOnly, (key) => ctx.stale.take(ctx.loaders.notificationPage.load(key), info));
    return mapMaybePromise(window, ({ items, totalCount, vendorTotal, hasNextPage }) => {
      const edges = items.map(({ node, after }) => new NotificationEdge(node, after, vendorTotal));
      return { edges, totalCount, pageInfo: new NotificationPageInfo(hasNextPage, edges.at(-1)) };
    });
  },

  events: async (user, args, ctx, info) => {
    mustOwn(user, ctx, 'events');
    const { count, from } = userFieldKeys.events(args);
    const window = await readEventsWindow(user.id, count, from, (key) => ctx.stale.take(ctx.loaders.eventPage.load(key), info));
    if (window === null) return null;
    const edges = window.items.map(({ event, after }) => ({ cursor: eventsCursor(after), node: event }));
    return { edges, totalCount: null, pageInfo: { hasNextPage: window.hasNextPage, endCursor: edges.at(-1)?.cursor ?? null } };
  },
};
