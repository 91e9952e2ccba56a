import LinkHeader from 'http-link-header';
import { z } from 'zod';
import type { Deadline } from '../../resilience/deadline.js';
import { HttpSource, pathSegment } from '../http-source.js';
import { headerList, headerSingle, type HeaderMap } from '../header-value.js';
import type { NotificationEntity, OffsetPage, SendableChannel } from '../models.js';
import { readsAsOneOf } from '../drift.js';
import { SourceError } from '../../errors.js';
import { count, isoFromDateString, MAX_GRAPHQL_INT, readableEntries } from '../normalize.js';
import { ChunkSize, distinctCount, leavesOut, lookupInChunks, placeWindow, VendorPageSize } from '../paging.js';

/** Notifications: bearer token, 1-based pages with Link and X-Total-Count, HTTP-dates, bulk unread counts. */
const MAX_PER_PAGE = 100;
const MAX_IDS_PER_QUERY = 100;
const LIST_ROUTE = 'GET /v1/users/:id/notifications';

const VENDOR_CHANNEL: Record<SendableChannel, 'email' | 'push' | 'in_app'> = { EMAIL: 'email', PUSH: 'push', IN_APP: 'in_app' };
const VENDOR_CHANNELS = Object.values(VENDOR_CHANNEL);

/** A notification as the vendor sends it, normalized to ours (also read from its webhook events). */
export const notification = z
  .object({
    id: z.string(),
    user: z.string(),
    title: z.string(),
    body: z.string(),
    // A channel the vendor added since is OTHER (and drift), not an unreadable notification that fails its whole page.
    channel: readsAsOneOf(z.string(), VENDOR_CHANNELS),
    read: z.boolean(),
    created: isoFromDateString,
  })
  .transform((n): NotificationEntity => ({
    id: n.id,
    userId: n.user,
    title: n.title,
    body: n.body,
    channel: n.channel === 'in_app' ? 'IN_APP' : n.channel === 'email' ? 'EMAIL' : n.channel === 'push' ? 'PUSH' : 'OTHER',
    read: n.read,
    createdAt: n.created,
  }));
const notificationList = z.array(notification);
const markedRead = z.object({ updated: count });
const unreadCounts = z.object({ counts: readableEntries(count) });

/** What tells a window's repeated items apart (placeWindow). */
const idOfNotification = (item: NotificationEntity): string => item.id;

/** What a Link header says of a next page (whether it names a rel="next"), or why it says nothing. */
function nextInLink(headers: HeaderMap): boolean | 'absent' | 'unreadable' {
  const link = headerList(headers, 'link')?.trim();
  if (!link) return 'absent';
  try {
    return LinkHeader.parse(link).rel('next').length > 0;
  } catch {
    return 'unreadable';
  }
}

/** The `page` a Link relation points at, when it names one. */
function linkedPage(link: LinkHeader, rel: string): number | undefined {
  const uri = link.rel(rel)[0]?.uri;
  if (uri === undefined) return undefined;
  try {
    const page = Number(new URL(uri).searchParams.get('page'));
    return Number.isInteger(page) && page >= 1 ? page : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The page an answer to page `asked` (1-based, past the first) says it is, when it says another: its rel="next"
 * names the page after it, and a page with items past its rel="last" cannot be the one asked. A vendor that ignores
 * `page` (renamed, stripped by a proxy) answers every page with its first.
 */
function anotherPageServed(headers: HeaderMap, asked: number, hasItems: boolean): number | undefined {
  const text = headerList(headers, 'link')?.trim();
  if (asked < 2 || !text) return undefined;
  let link: LinkHeader;
  try {
    link = LinkHeader.parse(text);
  } catch {
    return undefined;
  }
  const next = linkedPage(link, 'next');
  if (next !== undefined) return next - 1 === asked ? undefined : next - 1;
  const last = linkedPage(link, 'last');
  return hasItems && last !== undefined && last < asked ? last : undefined;
}

export class NotificationsSource extends HttpSource {
  /** Ids an unread-counts call carries: 100, or fewer once its URL was refused as too long. */
  private readonly countsChunk = new ChunkSize(MAX_IDS_PER_QUERY, (max, status) => this.chunkShrunk('GET /v1/unread-counts', max, status));

  /** Notifications' page size, as the length of its pages and their rel="next" say it (their answers carry no `limit`). */
  private readonly pageSize = new VendorPageSize(MAX_PER_PAGE);

  /** A window of a user's notifications, newest first. */
  list(userId: string, offset: number, first: number, unreadOnly: boolean, deadline?: Deadline): Promise<OffsetPage<NotificationEntity>> {
    return this.pageSize.window(() => this.window(userId, offset, first, unreadOnly, deadline));
  }

  private async window(userId: string, offset: number, first: number, unreadOnly: boolean, deadline?: Deadline): Promise<OffsetPage<NotificationEntity>> {
    const plan = this.pageSize.plan(offset, first);
    const asked = plan.asked;
    const pages = await Promise.all(plan.pages.map((p) => this.page(userId, p, asked, unreadOnly, deadline)));
    for (const p of pages) {
      for (const n of p.body) {
        if (n.userId !== userId) throw this.answeredForAnotherUser(LIST_ROUTE);
        // The filter was not applied (a proxy stripped it, the parameter was renamed): its offsets are another list's.
        if (unreadOnly && n.read) throw this.filterIgnored();
      }
    }
    for (let i = 0; i < pages.length; i++) {
      const served = anotherPageServed(pages[i]!.headers, plan.pages[i]! + 1, pages[i]!.body.length > 0);
      // Its items are another page's: placed as this one's, they would show where other notifications belong.
      if (served !== undefined) throw this.pageIgnored(plan.pages[i]! + 1, served);
    }
    const total = this.totalCount(pages[0]!.headers);
    this.noticePageSize(pages, plan.pages, asked, total);
    if (this.pageSize.fixedSize === undefined && plan.pages[0]! > 0 && total !== undefined && total > offset && pages.every((p) => p.body.length === 0)) {
      // Nothing where the total says the window's first items are: a vendor that ignores per_page holds them on an
      // earlier page of its own size. Its first page says that size (the window is then planned again).
      this.noticePageSize([await this.page(userId, 0, asked, unreadOnly, deadline)], [0], asked, total);
    }
    // A page shorter than per_page with more after it, by its rel="next" and by X-Total-Count both (a Link alone may
    // be wrong): the vendor pages tighter than asked, at that length. Its items are placed by that size, so a shorter
    // page gives a shorter window (the next one starts where it ends), never another window's notifications.
    const shortWithMore = pages
      .filter(({ body, headers }, i) => {
        const n = body.length;
        return n > 0 && n < plan.perPage && total !== undefined && total > (plan.pages[i]! + 1) * n && nextInLink(headers) === true;
      })
      .map((p) => p.body.length);
    const vendorPage = this.pageSize.fixedSize ?? (shortWithMore.length > 0 ? Math.min(...shortWithMore) : plan.perPage);
    if (shortWithMore.length > 0) this.pageSize.tighter(vendorPage);
    const {
      items,
      after,
      end,
      beyond: pastWindow,
    } = placeWindow(
      pages.map((p, i) => ({ start: plan.pages[i]! * vendorPage, items: p.body, size: vendorPage })),
      offset,
      first,
      idOfNotification,
    );
    const lastPage = pages[pages.length - 1]!;
    // More after our window: left over in the fetched pages, or past the last page we fetched.
    const hasNextPage = pastWindow || this.linksNextPage(lastPage.headers, lastPage.body.length === plan.perPage, total, end);
    return { items, ...(after && { after }), totalCount: total ?? end + (hasNextPage ? 1 : 0), ...(total !== undefined && { vendorTotal: total }), hasNextPage };
  }

  /** One page of a user's notifications (`index` 0-based; the vendor's pages are 1-based). */
  private page(userId: string, index: number, perPage: number, unreadOnly: boolean, deadline: Deadline | undefined) {
    return this.fetch({
      route: LIST_ROUTE,
      method: 'GET',
      path: `/v1/users/${pathSegment(userId)}/notifications?page=${index + 1}&per_page=${perPage}&unread=${unreadOnly}`,
      schema: notificationList,
      deadline,
    });
  }

  /**
   * A page with more notifications than per_page asked says the vendor ignores
   * the parameter (one that honours it, or caps it, never sends more): its own
   * size is that page's length when more follow it, and at least that when it
   * is the last. Counted by id: a page of per_page notifications with one of
   * them repeated (a replica's row) is one row longer, not a page of another
   * size; taken for one, each window asked one more per_page than the last.
   * A fixed size answered as asked again (the vendor honours it once more) is
   * forgotten. Either way the window is planned again by the caller.
   */
  private noticePageSize(
    pages: readonly { body: readonly NotificationEntity[]; headers: HeaderMap }[],
    indexes: readonly number[],
    asked: number,
    total: number | undefined,
  ): void {
    const before = this.pageSize.fixedSize;
    pages.forEach(({ body, headers }, i) => {
      const rows = body.length;
      const n = rows > asked ? distinctCount(body, idOfNotification) : rows;
      const more = nextInLink(headers) === true || (total !== undefined && total > (indexes[i]! + 1) * n);
      if (n > asked) this.pageSize.ignoresPerPage(n, more);
      else if (more && rows >= asked) this.pageSize.honoured(asked);
    });
    if (this.pageSize.fixedSize !== before) this.pageSizeChanged(LIST_ROUTE, asked, this.pageSize.fixedSize);
  }

  private pageIgnored(asked: number, served: number): SourceError {
    return this.unusableAnswer(LIST_ROUTE, `page=${asked} was answered with page ${served} by its Link header (the page parameter was ignored)`);
  }

  private filterIgnored(): SourceError {
    return this.unusableAnswer(LIST_ROUTE, 'unread=true answered with read notifications (the filter was ignored)');
  }

  /** X-Total-Count, or undefined (noted as drift) when it is absent or not a count. */
  private totalCount(headers: HeaderMap): number | undefined {
    const text = headerSingle(headers, 'x-total-count');
    const total = text === undefined || !/^\s*\d+\s*$/.test(text) || Number(text) > MAX_GRAPHQL_INT ? undefined : Number(text);
    if (total === undefined) this.drift.header(LIST_ROUTE, 'X-Total-Count', text === undefined ? 'absent' : 'unreadable', 'a count');
    return total;
  }

  /**
   * Whether the vendor has a page after this one: its Link header's rel="next".
   * Vendors leave Link out when there is one page; when it does not parse
   * (noted as drift), the total says, and without one a full page may have a next.
   */
  private linksNextPage(headers: HeaderMap, fullPage: boolean, total: number | undefined, seen: number): boolean {
    const next = nextInLink(headers);
    if (next === 'absent') return total !== undefined && seen < total;
    if (next === 'unreadable') {
      this.drift.header(LIST_ROUTE, 'Link', 'unreadable', 'RFC 8288 links');
      return total !== undefined ? seen < total : fullPage;
    }
    return next;
  }

  /** Sends one notification; the same key again (24 h) is answered with the first one and sends nothing. Null: no such user. */
  async create(input: { userId: string; title: string; body: string; channel: SendableChannel }, idempotencyKey: string, deadline?: Deadline): Promise<NotificationEntity | null> {
    const res = await this.fetchOrNull({
      route: 'POST /v1/notifications',
      method: 'POST',
      path: '/v1/notifications',
      body: { user: input.userId, title: input.title, body: input.body, channel: VENDOR_CHANNEL[input.channel] },
      headers: { 'idempotency-key': idempotencyKey },
      schema: notification,
      deadline,
    });
    // Taken by the vendor (a 2xx), but its answer is not this write's: a delivered write without a result, never another user's notification shown.
    if (res && res.body.userId !== input.userId) throw this.answeredForAnotherUser('POST /v1/notifications', res.status);
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
    return lookupInChunks(ids, this.countsChunk, this.countsChunkOf.bind(this, deadline));
  }

  /** One call of `unreadCounts`: a bound method, not a closure made per call (see paging.ts's ChunkedLookup). */
  private async countsChunkOf(deadline: Deadline | undefined, batch: string[]): Promise<[string, number | SourceError][]> {
    const res = await this.fetch({
      route: 'GET /v1/unread-counts',
      method: 'GET',
      path: `/v1/unread-counts?user_ids=${batch.map(encodeURIComponent).join(',')}`,
      schema: unreadCounts,
      deadline,
      batchSize: batch.length,
    });
    const { entries, unreadable } = res.body.counts;
    // Unknown ids count 0 in the contract, so each id asked has a key; keys of its own (say, encoded) would hide that.
    if (leavesOut(batch, entries, unreadable)) this.drift.omittedIds('GET /v1/unread-counts', 'counts.*', 'a count for each id asked');
    const found: [string, number | SourceError][] = [...entries];
    for (const id of batch) {
      const problem = unreadable.get(id);
      if (problem !== undefined) found.push([id, this.unreadableEntity('GET /v1/unread-counts', 'a count', `counts.${problem}`)]);
    }
    return found;
  }
}
