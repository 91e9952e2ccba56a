import type { RedisSettings } from '../config-types.js';
import type { Logger } from '../logger.js';
import type { NotificationEntity, UserEntity } from '../sources/models.js';
import type { Siblings } from '../siblings.js';
import { LocalLiveLog, type LiveLog } from './live-log.js';
import { RedisLiveLog } from './redis-live-log.js';
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

type Listener = (payload: unknown) => void;

/**
 * The events subscriptions are made of, on every instance: with Redis through
 * one stream each instance reads from where it left off (RedisLiveLog), so
 * what a webhook delivered to one instance reaches a subscriber on another
 * even across a Redis outage; without, in this process and its siblings.
 * Channels (`<prefix>live:<topic>:<user>`) carry the key prefix, so
 * deployments sharing a Redis stay apart. Each subscriber reads from its own
 * SubscriberQueue, filled by its listener; an event is parsed once, and only
 * when someone here listens on its channel.
 */
export class LiveEvents {
  private readonly log: LiveLog;
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly prefix: string;

  constructor(
    redis: RedisSettings | null,
    private readonly logger: Logger,
    /** Without Redis, under WORKERS=N: events reach the other workers' subscribers through the primary. */
    siblings: Siblings | null = null,
    /** With Redis: about how many events the stream keeps for an instance that was away (LIVE_EVENTS_KEPT). */
    kept = 10_000,
  ) {
    this.prefix = redis?.keyPrefix ?? '';
    this.log = redis ? new RedisLiveLog(redis, kept, logger) : new LocalLiveLog(siblings);
    this.log.read((channel, payload) => {
      const here = this.listeners.get(channel);
      if (!here) return;
      let value: unknown;
      try {
        value = payload();
      } catch (err) {
        logger.warn({ channel, err: (err as Error).message }, 'A live event could not be read (not JSON); its subscribers skip it');
        return;
      }
      for (const listener of here) listener(value);
    });
  }

  private channel(topic: LiveTopic, userId: string): string {
    return `${this.prefix}live:${topic}:${userId}`;
  }

  /**
   * Announces an event to every subscriber of `topic` for `userId`, on every
   * instance. With `once`, only the first event under its key within `ttlMs`
   * is announced (a notification a vendor sent under two webhook ids): false
   * for a repeat.
   * Rejects when it could not be announced (Redis away); nothing was then.
   */
  publish<T extends LiveTopic>(topic: T, userId: string, payload: LiveTopics[T], once?: { key: string; ttlMs: number }): Promise<boolean> {
    return this.log.append(this.channel(topic, userId), payload, once);
  }

  /** Events from now on, for one subscriber; return() stops listening. */
  subscribe<T extends LiveTopic>(topic: T, userId: string, keep: Keep): SubscriberQueue<LiveTopics[T]> {
    const channel = this.channel(topic, userId);
    const listener: Listener = (payload) => queue.push(payload as LiveTopics[T]);
    const onFellBehind = (held: number) =>
      // One line per subscription ended so; it names the user, not the caller's token.
      this.logger.warn({ topic, userId, held }, `A subscriber to ${topic} left ${held} events unread (a stalled connection); its subscription was ended`);
    const queue = new SubscriberQueue<LiveTopics[T]>(keep.latest ? keep : { ...keep, onFellBehind }, () => {
      const here = this.listeners.get(channel);
      here?.delete(listener);
      if (here?.size === 0) this.listeners.delete(channel);
    });
    let here = this.listeners.get(channel);
    if (!here) this.listeners.set(channel, (here = new Set()));
    here.add(listener);
    return queue;
  }

  /** Resolves once this instance hears events (with Redis: it knows where the stream ends). */
  reading(): Promise<void> {
    return this.log.reading();
  }

  close(): void {
    this.log.close();
  }
}
