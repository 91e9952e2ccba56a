import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import type { RedisSettings } from '../config-types.js';
import type { Logger } from '../logger.js';
import type { NotificationEntity, UserEntity } from '../sources/models.js';
import type { Siblings } from '../siblings.js';
import { newRedisClient, type RedisClient } from '../redis.js';
import { SubscriberQueue, type Keep } from './subscriber-queue.js';

/** What is published, by topic: each keyed by the user it concerns. */
export interface LiveTopics {
  notificationAdded: NotificationEntity;
  /** The unread count may have changed: subscribers read it again. */
  unreadCountChanged: true;
  /** A profile changed at the identity provider (its change feed): the new profile. */
  userUpdated: UserEntity;
}
export type LiveTopic = keyof LiveTopics;

/** Where events are published and listened to: in process, through Redis, or through the cluster's primary. */
type Target = Pick<EventTarget, 'addEventListener' | 'removeEventListener' | 'dispatchEvent'>;

/**
 * The events subscriptions are made of. With Redis, through its pub/sub
 * (graphql-yoga's Redis event target), so what a webhook delivered to one
 * instance reaches a subscriber on another; without, in this process.
 * Channels carry the key prefix, so deployments sharing a Redis stay apart.
 * Each subscriber reads from its own SubscriberQueue, filled by its listener.
 */
export class LiveEvents {
  private readonly target: Target;
  private readonly clients: RedisClient[] = [];

  constructor(
    redis: RedisSettings | null,
    private readonly logger: Logger,
    /** Without Redis, under WORKERS=N: events reach the other workers' subscribers through the primary. */
    siblings: Siblings | null = null,
  ) {
    this.prefix = redis?.keyPrefix ?? '';
    if (redis) {
      const publishClient = newRedisClient(redis, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
      const subscribeClient = newRedisClient(redis, {
        // A SUBSCRIBE sent while Redis is away waits for it, however long: with ioredis's default (20 reconnections,
        // about 10 s) it was dropped, and a subscriber that came during a longer outage never heard anything after.
        maxRetriesPerRequest: null,
        // No INFO ready check and no CLIENT SETINFO on this connection (ioredis#2037, fixed in ioredis 6): a SUBSCRIBE
        // sent while they were under way put the connection in subscriber mode, the ready check was then refused,
        // and ioredis reconnected without that SUBSCRIBE. Its subscribers stayed connected and heard nothing, ever.
        // SUBSCRIBE is served while Redis loads its data, so the ready check guards nothing here.
        enableReadyCheck: false,
        disableClientInfo: true,
      });
      for (const c of [publishClient, subscribeClient]) c.on('error', () => undefined);
      this.clients.push(publishClient, subscribeClient);
      this.target = createRedisEventTarget({ publishClient: settled(publishClient), subscribeClient: settled(subscribeClient) });
    } else if (siblings) {
      this.target = siblingEventTarget(siblings);
    } else {
      this.target = new EventTarget();
    }
  }

  private readonly prefix: string;

  /** As graphql-yoga's pub/sub names them (`<routing key>:<id>`), so instances of either kind hear each other. */
  private channel(topic: LiveTopic, userId: string): string {
    return `${this.prefix}live:${topic}:${userId}`;
  }

  publish<T extends LiveTopic>(topic: T, userId: string, payload: LiveTopics[T]): void {
    try {
      this.target.dispatchEvent(new CustomEvent(this.channel(topic, userId), { detail: payload }));
    } catch (err) {
      // Redis away: subscribers on other instances miss this one; this instance's still get it through L1's invalidation.
      this.logger.warn({ topic, err: (err as Error).message }, 'Could not publish a live event');
    }
  }

  /** Events from now on, for one subscriber; return() stops listening. */
  subscribe<T extends LiveTopic>(topic: T, userId: string, keep: Keep): SubscriberQueue<LiveTopics[T]> {
    const channel = this.channel(topic, userId);
    const listener = (event: Event) => queue.push((event as CustomEvent<LiveTopics[T]>).detail);
    const onFellBehind = (held: number) =>
      // One line per subscription ended so; it names the user, not the caller's token.
      this.logger.warn({ topic, userId, held }, `A subscriber to ${topic} left ${held} events unread (a stalled connection); its subscription was ended`);
    const queue = new SubscriberQueue<LiveTopics[T]>(keep.latest ? keep : { ...keep, onFellBehind }, () => this.target.removeEventListener(channel, listener));
    this.target.addEventListener(channel, listener);
    return queue;
  }

  close(): void {
    for (const c of this.clients) c.disconnect();
  }
}

/**
 * The Redis event target calls publish, subscribe and unsubscribe without
 * handling their promises; with Redis away they reject, and an unhandled
 * rejection ends a Node process. These are caught here: a missed live event
 * while Redis is away is the degradation, not a crash.
 */
function settled(client: RedisClient): RedisClient {
  const quiet = (name: 'publish' | 'subscribe' | 'unsubscribe') => {
    const original = client[name].bind(client) as (...args: unknown[]) => Promise<unknown>;
    return (...args: unknown[]) => original(...args).catch(() => 0);
  };
  return new Proxy(client, {
    get(target, property, receiver) {
      if (property === 'publish' || property === 'subscribe' || property === 'unsubscribe') return quiet(property);
      return Reflect.get(target, property, receiver) as unknown;
    },
  });
}

/** An event target whose events also reach the same target in every other worker (relayed by the primary). */
function siblingEventTarget(siblings: Siblings): EventTarget {
  const local = new EventTarget();
  siblings.on('live', (m) => {
    const { type, detail } = m as { type: string; detail: unknown };
    local.dispatchEvent(new CustomEvent(type, { detail }));
  });
  return {
    addEventListener: local.addEventListener.bind(local),
    removeEventListener: local.removeEventListener.bind(local),
    dispatchEvent(event: Event) {
      siblings.send('live', { type: event.type, detail: (event as CustomEvent).detail });
      return local.dispatchEvent(event);
    },
  };
}
