import LinkHeader from 'http-link-header';
import { z } from 'zod';
import type { Deadline } from '../../resilience/deadline.js';
import { HttpSource, pathSegment } from '../http-source.js';
import type { NotificationEntity, OffsetPage } from '../models.js';
import type { SourceError } from '../../errors.js';
import { count, isoFromDateString, readableEntries } from '../normalize.js';
import { lookupInChunks, planPages } from '../paging.js';

/** Notifications: bearer token, 1-based pages with Link and X-Total-Count, HTTP-dates, bulk unread counts. */
const MAX_PER_PAGE = 100;
const MAX_IDS_PER_QUERY = 100;

/** A notification as the vendor sends it, normalized to ours (also read from its webhook events). */
export const notification = z
  .object({
    id: z.string(),
    user: z.string(),
    title: z.string(),
    body: z.string(),
    channel: z.enum(['email', 'push', 'in_app']),
    read: z.boolean(),
    created: isoFromDateString,
  })
  .transform((n): NotificationEntity => ({
    id: n.id,
    userId: n.user,
    title: n.title,
    body: n.body,
    channel: n.channel === 'in_app' ? 'IN_APP' : n.channel === 'email' ? 'EMAIL' : 'PUSH',
    read: n.read,
    createdAt: n.created,
  }));
const notificationList = z.array(notification);
const markedRead = z.object({ updated: count });
const VENDOR_CHANNEL: Record<NotificationEntity['channel'], 'email' | 'push' | 'in_app'> = { EMAIL: 'email', PUSH: 'push', IN_APP: 'in_app' };
const unreadCounts = z.object({ counts: readableEntries(count) });

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

export class NotificationsSource extends HttpSource {
  /** A window of a user's notifications, newest first. */
  async list(userId: string, offset: number, first: number, unreadOnly: boolean, deadline?: Deadline): Promise<OffsetPage<NotificationEntity>> {
    const plan = planPages(offset, first, MAX_PER_PAGE);
    const pages = await Promise.all(
      plan.pages.map((p) =>
        this.fetch({
          route: 'GET /v1/users/:id/notifications',
          method: 'GET',
          path: `/v1/users/${pathSegment(userId)}/notifications?page=${p + 1}&per_page=${plan.perPage}&unread=${unreadOnly}`,
          schema: notificationList,
          deadline,
        }),
      ),
    );
    const fetched = pages.flatMap((p) => p.body);
    const items = fetched.slice(plan.skip, plan.skip + first);
    const lastPage = pages[pages.length - 1]!;
    // More after our window: either left over in the fetched pages, or the vendor links a next page.
    const link = header(lastPage.headers, 'link');
    const hasNextPage = plan.skip + first < fetched.length || (link !== undefined && LinkHeader.parse(link).rel('next').length > 0);
    const total = Number(header(pages[0]!.headers, 'x-total-count'));
    if (!Number.isInteger(total) || total < 0) this.logger.warn({ source: this.name, route: 'GET /v1/users/:id/notifications' }, 'X-Total-Count missing or invalid');
    const totalCount = Number.isInteger(total) && total >= 0 ? total : offset + items.length + (hasNextPage ? 1 : 0);
    return { items, totalCount, hasNextPage };
  }

  /** Sends one notification; the same key again (24 h) is answered with the first one and sends nothing. Null: no such user. */
  async create(
    input: { userId: string; title: string; body: string; channel: NotificationEntity['channel'] },
    idempotencyKey: string,
    deadline?: Deadline,
  ): Promise<NotificationEntity | null> {
    const res = await this.fetchOrNull({
      route: 'POST /v1/notifications',
      method: 'POST',
      path: '/v1/notifications',
      body: { user: input.userId, title: input.title, body: input.body, channel: VENDOR_CHANNEL[input.channel] },
      headers: { 'idempotency-key': idempotencyKey },
      schema: notification,
      deadline,
    });
    return res?.body ?? null;
  }

  /** Marks notifications read; how many changed, or null when there is no such user. Repeating it changes nothing more. */
  async markRead(userId: string, ids: readonly string[], idempotencyKey: string, deadline?: Deadline): Promise<number | null> {
    const res = await this.fetchOrNull({
      route: 'POST /v1/users/:id/notifications/read',
      method: 'POST',
      path: `/v1/users/${pathSegment(userId)}/notifications/read`,
      body: { ids },
      headers: { 'idempotency-key': idempotencyKey },
      schema: markedRead,
      idempotent: true,
      deadline,
    });
    return res?.body.updated ?? null;
  }

  /** Unread counts for many users, 100 a call; a count that cannot be read fails its user alone. Keys nobody asked for are ignored. */
  unreadCounts(ids: readonly string[], deadline?: Deadline): Promise<Map<string, number | SourceError>> {
    return lookupInChunks(ids, MAX_IDS_PER_QUERY, async (batch) => {
      const res = await this.fetch({
        route: 'GET /v1/unread-counts',
        method: 'GET',
        path: `/v1/unread-counts?user_ids=${batch.map(encodeURIComponent).join(',')}`,
        schema: unreadCounts,
        deadline,
        batchSize: batch.length,
      });
      const { entries, unreadable } = res.body.counts;
      const found: [string, number | SourceError][] = [...entries];
      for (const id of batch) {
        const problem = unreadable.get(id);
        if (problem !== undefined) found.push([id, this.unreadableEntity('GET /v1/unread-counts', 'a count', `counts.${problem}`)]);
      }
      return found;
    });
  }
}
