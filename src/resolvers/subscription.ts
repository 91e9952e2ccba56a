import { GraphQLError } from 'graphql';
import { Dependencies } from '../cache/response-cache.js';
import { Loaders, type GatewayContext } from '../context.js';
import { forbidden } from '../errors.js';
import type { SubscriptionResolvers } from '../generated/resolvers.js';
import { latestOnly } from '../realtime/latest-only.js';
import type { LiveTopic, LiveTopics } from '../realtime/live-events.js';
import { Deadline } from '../resilience/deadline.js';
import type { NotificationEntity, UserEntity } from '../sources/models.js';
import { canReadPrivate } from '../viewer.js';

/**
 * Authorized at subscribe time like a query (a user subscribes to their own,
 * an admin to anyone's), bounded per caller, and released when the client
 * goes away. The events come from LiveEvents (webhooks, on every instance).
 */
function listen<T extends LiveTopic>(ctx: GatewayContext, topic: T, userId: string, { latest = false } = {}): AsyncIterableIterator<LiveTopics[T]> {
  if (!canReadPrivate(ctx.viewer, userId)) throw forbidden('the live updates');
  const release = ctx.subscriptions.enter(ctx.viewer.userId);
  if (!release) {
    throw new GraphQLError(`At most ${ctx.subscriptions.perCaller} live subscriptions per caller; close one first.`, { extensions: { code: 'RATE_LIMITED' } });
  }
  const source = ctx.live.subscribe(topic, userId)[Symbol.asyncIterator]();
  const events = latest ? latestOnly(source) : source;
  // Not an async generator: one waiting for the next event would run its `finally` only when an event came,
  // so a client that leaves would hold its place (and its listener) until then. return() releases at once.
  const iterator: AsyncIterableIterator<LiveTopics[T]> = {
    [Symbol.asyncIterator]: () => iterator,
    next: () => events.next(),
    return: (value?: unknown) => {
      release();
      return events.return ? events.return(value) : Promise.resolve({ done: true, value: undefined });
    },
    throw: (error?: unknown) => {
      release();
      return events.throw ? events.throw(error) : Promise.reject(error);
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
    subscribe: (_parent, { userId }, ctx) => listen(ctx, 'notificationAdded', userId),
    resolve: (payload: NotificationEntity) => payload,
  },
  unreadCount: {
    // A state, not a stream of facts: changes during a read fold into the next read.
    subscribe: (_parent, { userId }, ctx) => listen(ctx, 'unreadCountChanged', userId, { latest: true }),
    // Each event's count is read through the same cache and source as a query, batched with other events' reads
    // (LiveReads: one vendor call for many events) under that batch's own deadline: nothing of one event stays in the subscription.
    resolve: async (_payload: unknown, { userId }: { userId: string }, ctx: GatewayContext) => {
      // Another instance's invalidation may reach this one after its event: this user's count is read past L1.
      ctx.caches.unreadCount.dropLocal([userId]);
      return (await ctx.liveReads.read<string, number>('notifications.unreadCount', userId)).value;
    },
  },
  userUpdated: {
    subscribe: (_parent, { userId }, ctx) => listen(ctx, 'userUpdated', userId),
    // The event carries the new profile; metrics and notifications under it are read for this event alone.
    resolve: (payload: UserEntity, _args: unknown, ctx: GatewayContext) => {
      freshScope(ctx);
      return payload;
    },
  },
};
