import { BearerAuth } from '../auth.js';
import { defineSource } from '../define-source.js';
import { NotificationsSource } from './notifications-source.js';

/** Notifications (UPSTREAMS.md): static bearer token, Link-header pages, HTTP-dates, bulk unread counts, Retry-After as an HTTP-date. */
export const notifications = defineSource({
  name: 'notifications',
  description: 'the messaging vendor (notifications)',
  env: { url: 'NOTIFICATIONS_URL', credentials: { token: 'NOTIFICATIONS_TOKEN' } },
  tuning: { rateLimitPerSec: 80, rateLimitBurst: 8 },
  entities: {
    'notifications.unreadCount': {
      env: 'NOTIFICATIONS_UNREAD_COUNT',
      what: "a user's unread notification count",
      defaults: { ttlMs: 10_000, staleWhileRevalidateMs: 30_000, staleIfErrorMs: 600_000 },
    },
    'notifications.page': {
      env: 'NOTIFICATIONS_PAGE',
      what: "one page of a user's notifications",
      defaults: { ttlMs: 10_000, staleWhileRevalidateMs: 30_000, staleIfErrorMs: 600_000 },
    },
  },
  create: (base, endpoint) => new NotificationsSource({ ...base, auth: new BearerAuth(endpoint.token) }),
});
