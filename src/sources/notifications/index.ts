import { z } from 'zod';
import { asError } from '../../errors.js';
import { BearerAuth } from '../auth.js';
import { cachedEntity, defineSource } from '../define-source.js';
import { inIdOrder } from '../paging.js';
import type { NotificationEntity, NotificationPageKey, OffsetPage } from '../models.js';
import { notification, NotificationsSource } from './notifications-source.js';

/** The vendor's webhook events (UPSTREAMS.md): only what says whose notifications changed is read. */
/** Any event about a user's notifications: the two UPSTREAMS.md names, and whatever type a vendor adds (deleted, archived…). */
const notificationEvent = z.object({ type: z.string(), data: z.object({ user: z.string().min(1) }) });
const eventOf = <T extends z.ZodType>(data: T) => z.object({ type: z.string(), timestamp: z.string(), data });

/** Notifications (UPSTREAMS.md): static bearer token, Link-header pages, HTTP-dates, bulk unread counts, Retry-After as an HTTP-date. */
export const notifications = defineSource({
  name: 'notifications',
  description: 'the messaging vendor (notifications)',
  env: { url: 'NOTIFICATIONS_URL', credentials: { token: 'NOTIFICATIONS_TOKEN' } },
  tuning: { rateLimitPerSec: 80, rateLimitBurst: 8 },
  entities: {
    'notifications.unreadCount': cachedEntity<string, number>()({
      env: 'NOTIFICATIONS_UNREAD_COUNT',
      what: "a user's unread notification count",
      defaults: { ttlMs: 10_000, staleWhileRevalidateMs: 30_000, staleIfErrorMs: 600_000 },
      group: (id) => id,
      variant: () => '',
      fetch: async (source: NotificationsSource, ids, deadline) => {
        // The vendor counts unknown ids as 0; an id it left out of its answer is unknown too.
        return inIdOrder(ids, await source.unreadCounts(ids, deadline), 0);
      },
    }),
    'notifications.page': cachedEntity<NotificationPageKey, OffsetPage<NotificationEntity>>()({
      env: 'NOTIFICATIONS_PAGE',
      what: "one page of a user's notifications",
      defaults: { ttlMs: 10_000, staleWhileRevalidateMs: 30_000, staleIfErrorMs: 600_000 },
      // A list has no bulk endpoint: one call per key, each failing alone.
      perKey: true,
      group: (k) => k.userId,
      variant: (k) => `${k.offset}:${k.first}:${k.unreadOnly ? 'unread' : 'all'}`,
      fetch: (source: NotificationsSource, keys, deadline) => Promise.all(keys.map((k) => source.list(k.userId, k.offset, k.first, k.unreadOnly, deadline).catch(asError))),
    }),
  },
  webhooks: {
    secretEnv: 'NOTIFICATIONS_WEBHOOK_SECRET',
    shapes: {
      'notification.created': eventOf(notification),
      'notification.read': eventOf(z.object({ user: z.string(), ids: z.array(z.string()) })),
    },
    changes: (event) => {
      const parsed = notificationEvent.safeParse(event);
      if (!parsed.success) return null;
      const user = parsed.data.data.user;
      // A created notification and a read one change the same things: that user's pages and count. So may a type
      // added since (a deleted one): what it changed is not known, so the same is dropped rather than kept stale.
      // The count is read again by its subscribers: once more after the entries settle (the vendor's reads may lag its event).
      const published: { topic: string; key: string; payload: unknown; again?: boolean; once?: string }[] = [
        { topic: 'unreadCountChanged', key: user, payload: true, again: true },
      ];
      if (parsed.data.type === 'notification.created') {
        // The raw event's data (the parse above kept only its user).
        const added = notification.safeParse((event as { data: unknown }).data);
        if (added.success) published.unshift({ topic: 'notificationAdded', key: user, payload: added.data, once: `notification.created ${added.data.id}` });
      }
      return { entities: ['notifications.unreadCount', 'notifications.page'], groups: [user], published };
    },
  },
  create: (base, endpoint) => new NotificationsSource({ ...base, auth: new BearerAuth(endpoint.token) }),
});
