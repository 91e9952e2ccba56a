import { GraphQLError } from 'graphql';
import { Dependencies } from '../cache/response-cache.js';
import { Loaders, type GatewayContext } from '../context.js';
import { forbidden } from '../errors.js';
import type { SubscriptionResolvers } from '../generated/resolvers.js';
import type { LiveTopic, LiveTopics } from '../realtime/live-events.js';
import { FellBehind } from '../realtime/subscriber-queue.js';
import { Deadline } from '../resilience/deadline.js';
import type { NotificationEntity, UserEntity } from '../sources/models.js';
import { canReadPrivate } from '../viewer.js';

/**
 * Authorized at subscribe time like a query (a user subscribes to their own,
 * an admin to anyone's), bounded per caller, and released when the client
 * goes away. The events come from LiveEvents (webhooks, on every instance).
 * A state (a count, a profile) keeps only its latest event for a consumer
 * still busy or not reading; a stream of facts (notifications) holds at most
 * SUBSCRIPTION_HELD_EVENTS_MAX, then ends (FellBehind).
 */
function listen<T extends LiveTopic>(ctx: GatewayContext, topic: T, userId: string, kind: 'state' | 'facts'): AsyncIterableIterator<LiveTopics[T] | FellBehind> {
  if (!canReadPrivate(ctx.viewer, userId)) throw forbidden('the live updates');
  const release = ctx.subscriptions.enter(ctx.viewer.userId);
  if (!release) {
    throw new GraphQLError(`At most ${ctx.subscriptions.perCaller} live subscriptions per caller; close one first.`, { extensions: { code: 'RATE_LIMITED' } });
  }
  const events = ctx.live.subscribe(topic, userId, kind === 'state' ? { latest: true } : { latest: false, max: ctx.subscriptions.heldEventsMax });
  // Not an async generator: one waiting for the next event would run its `finally` only when an event came,
  // so a client that leaves would hold its place (and its listener) until then. return() releases at once.
  const iterator: AsyncIterableIterator<LiveTopics[T] | FellBehind> = {
    [Symbol.asyncIterator]: () => iterator,
    next: () => events.next(),
    return: () => {
      release();
      return events.return();
    },
    throw: (error?: unknown) => {
      release();
      void events.return();
      return Promise.reject(error);
    },
  };
  return iterator;
}

/**
 * A fresh request scope for one event: new loaders under a new deadline, in
 * place of the last event's (whose deadline is disposed). Fields below the
 * event's root read through them, so nothing of one event is kept for the next.
 */
function freshScope(ctx: GatewayContext): void {
  ctx.deadline.dispose();
  ctx.deadline = Deadline.after(ctx.deadlineMs);
  ctx.dependencies = new Dependencies();
  ctx.loaders = new Loaders(ctx.caches, ctx.deadline, ctx.dependencies);
}

export const Subscription: SubscriptionResolvers = {
  notificationAdded: {
    subscribe: (_parent, { userId }, ctx) => listen(ctx, 'notificationAdded', userId, 'facts'),
    resolve: (payload: NotificationEntity | FellBehind) => {
      if (payload instanceof FellBehind) {
        throw new GraphQLError(
          `This subscriber left ${payload.held} notifications unread, so its subscription was ended; subscribe again and read the notifications it missed with a query.`,
          { extensions: { code: 'OVERLOADED', reason: 'subscriber_behind' } },
        );
      }
      return payload;
    },
  },
  unreadCount: {
    // A state, not a stream of facts: changes during a read fold into the next read.
    subscribe: (_parent, { userId }, ctx) => listen(ctx, 'unreadCountChanged', userId, 'state'),
    // Each event's count is read through the same cache and source as a query, batched with other events' reads
    // (LiveReads: one vendor call for many events) under that batch's own deadline: nothing of one event stays in the subscription.
    resolve: async (_payload: unknown, { userId }: { userId: string }, ctx: GatewayContext) => {
      // Another instance's invalidation may reach this one after its event: this user's count is read past L1.
      ctx.caches.unreadCount.dropLocal([userId]);
      return (await ctx.liveReads.read<string, number>('notifications.unreadCount', userId)).value;
    },
  },
  userUpdated: {
    // A state too: each event carries the whole new profile, so one not yet sent is replaced by a newer one.
    subscribe: (_parent, { userId }, ctx) => listen(ctx, 'userUpdated', userId, 'state'),
    // The event carries the new profile; metrics and notifications under it are read for this event alone.
    resolve: (payload: UserEntity, _args: unknown, ctx: GatewayContext) => {
      freshScope(ctx);
      return payload;
    },
  },
};
