import { z } from 'zod';
import type { Deadline } from '../../resilience/deadline.js';
import { HttpSource, pathSegment } from '../http-source.js';
import type { ChangedPage, ChangedRecord, OffsetPage, UserEntity } from '../models.js';
import { SourceError } from '../../errors.js';
import { readsAs } from '../drift.js';
import { isoFromDateString, count, instantOrNever, isCount, lenientObjectAs, optional, readableItems } from '../normalize.js';
import { quickRead, setQuickReader } from '../quick-read.js';
import { ChunkSize, distinctCount, lookupInChunks, placeWindow, unreadableIds, VendorPageSize } from '../paging.js';

/** Identity (Auth0 Management API v2 dialect): Lucene batch search, 0-based pages, ISO timestamps. */
const MAX_PER_PAGE = 100;
const MAX_IDS_PER_QUERY = 100;
/** Pages of one id search read at most (a vendor paging 100 ids in tens). */
const MAX_SEARCH_PAGES = 10;

// Every field of the contract is named (those not read as unknown), so that drift means a change, not a field we skip.
const userFields = {
  user_id: z.string().min(1),
  email: optional(z.string()),
  email_verified: optional(z.boolean()),
  name: optional(z.string()),
  nickname: optional(z.string()),
  picture: optional(z.string()),
  created_at: optional(isoFromDateString),
  last_login: optional(isoFromDateString),
  updated_at: z.unknown().optional(),
  logins_count: z.unknown().optional(),
};

function toUserEntity(u: z.infer<z.ZodObject<typeof userFields>>): UserEntity {
  return {
    id: u.user_id,
    email: u.email ?? null,
    emailVerified: u.email_verified ?? null,
    name: u.name ?? null,
    nickname: u.nickname ?? null,
    avatarUrl: u.picture ?? null,
    createdAt: u.created_at ?? null,
    lastLoginAt: instantOrNever(u.last_login),
  };
}

const user = lenientObjectAs(userFields, toUserEntity);

/** A user as the change feed reads it: the profile, and the instant it last changed (null when unreadable: applied, but never a mark). */
const changedUser = lenientObjectAs({ ...userFields, updated_at: optional(isoFromDateString) }, (u): ChangedRecord<UserEntity> => ({
  id: u.user_id,
  updatedAt: u.updated_at ?? null,
  value: toUserEntity(u),
}));

/**
 * A page of users: Auth0's object, or the bare array of users it answers with when `include_totals` was not applied
 * (a proxy that strips it, a version that drops it), which says no start, limit nor total. The array reads (shown
 * as drift at the root: the walk knows the object), and a total that is absent or unreadable is unknown, not an error.
 */
function usersPageOf<U extends z.ZodType>(item: U) {
  const users = readableItems(item);
  const object = z.object({ start: z.unknown().optional(), limit: z.unknown().optional(), length: z.unknown().optional(), total: optional(count), users });
  type Page = z.output<typeof object>;
  const bare = users.transform((read): Page => ({ users: read }));
  // Not a z.union: its error for a malformed object would say "(root): invalid input", not which user's field.
  const either = readsAs(
    z.unknown().transform((raw, ctx): Page => {
      const read = (Array.isArray(raw) ? bare : object).safeParse(raw);
      if (read.success) return read.data;
      for (const issue of read.error.issues) ctx.addIssue({ code: 'custom', message: issue.message, path: issue.path });
      return z.NEVER;
    }),
    object,
  );
  setQuickReader(either, (raw) => quickRead(Array.isArray(raw) ? bare : object, raw));
  return either;
}
const page = usersPageOf(user);
const changedPage = usersPageOf(changedUser);

/** Lucene's special characters escaped, for a term outside quotes (an ISO instant's colons). */
function luceneTerm(value: string): string {
  return value.replace(/[+\-&|!(){}[\]^"~*?:\\/ ]/g, '\\$&');
}

/** A Lucene phrase: backslash and quote escaped, so an id can never close the phrase or add a clause. */
function phrase(value: string): string {
  return `"${value.replace(/[\\"]/g, '\\$&')}"`;
}

/** How many users a page held, read or not. */
const lengthOf = (p: { users: { items: readonly unknown[]; unreadable: number } }): number => p.users.items.length + p.users.unreadable;
/** A page's users counted by id: a replica's repeated row is no user more (a search paged by it asked too few pages). */
const usersIn = (p: { users: { items: readonly UserEntity[]; unreadable: number } }): number => distinctCount(p.users.items, idOfUser) + p.users.unreadable;

/** One page of the list of all users, oldest first. */
const usersPagePath = (index: number, perPage: number): string => `/api/v2/users?page=${index}&per_page=${perPage}&include_totals=true&sort=created_at%3A1`;

/** What tells a window's repeated items apart (placeWindow). */
const idOfUser = (item: UserEntity): string => item.id;

/**
 * The position of a page's first user: the page index times the vendor's page
 * size (its `limit`, which is smaller than per_page when it pages tighter, else
 * ours), or its `start` when it says so and no `limit` contradicts it.
 */
function firstIndexOf(body: { start?: unknown; limit?: unknown }, pageIndex: number, perPage: number): number {
  const size = isCount(body.limit) && body.limit > 0 ? body.limit : null;
  if (isCount(body.start) && (size === null || body.start === pageIndex * size)) return body.start;
  return pageIndex * (size ?? perPage);
}

/** How many users a page holds at most: its `limit`, else per_page as asked. */
function pageSizeOf(body: { limit?: unknown }, perPage: number): number {
  return isCount(body.limit) && body.limit > 0 ? body.limit : perPage;
}

export class IdentitySource extends HttpSource {
  /** Ids a search carries: 100, or fewer once its URL was refused as too long. */
  private readonly searchChunk = new ChunkSize(MAX_IDS_PER_QUERY, (max, status) => this.chunkShrunk('GET /api/v2/users?q', max, status));

  /**
   * Users by id through the search endpoint, 100 ids a call; unknown ids are
   * absent from the map. When the answer held users that could not be read
   * (no user_id), the ids it did not answer for are errors, not unknown.
   */
  usersByIds(ids: readonly string[], deadline?: Deadline): Promise<Map<string, UserEntity | SourceError>> {
    return lookupInChunks(ids, this.searchChunk, this.usersChunkOf.bind(this, deadline));
  }

  /** One search of `usersByIds`: a bound method, not a closure made per call (see paging.ts's ChunkedLookup). */
  private async usersChunkOf(deadline: Deadline | undefined, batch: string[]): Promise<[string, UserEntity | SourceError][]> {
    const q = `user_id:(${batch.map(phrase).join(' OR ')})`;
    const search = (pageIndex: number) =>
      this.fetch({
        route: 'GET /api/v2/users?q',
        method: 'GET',
        path: `/api/v2/users?q=${encodeURIComponent(q)}&page=${pageIndex}&per_page=${MAX_PER_PAGE}&include_totals=true`,
        schema: page,
        deadline,
        ...(pageIndex === 0 ? { batchSize: batch.length } : {}),
      });
    const first = await search(0);
    const pages = [first.body];
    // A vendor that pages tighter than per_page says so in `total`: the users past its first page are on the next
    // ones, not unknown. Its page size is what the first page held; no more can match than ids were asked.
    const perPage = usersIn(first.body);
    const total = first.body.total ?? undefined;
    const matches = Math.min(total ?? batch.length, batch.length);
    if (perPage > 0 && perPage < MAX_PER_PAGE && matches > perPage) {
      if (total !== undefined) {
        const more = Math.min(Math.ceil(matches / perPage), MAX_SEARCH_PAGES);
        pages.push(...(await Promise.all(Array.from({ length: more - 1 }, (_, i) => search(i + 1)))).map((p) => p.body));
      } else {
        // No total: only a page shorter than the first says the matches ended (ids not on any page are then unknown).
        while (pages.length < MAX_SEARCH_PAGES && usersIn(pages.at(-1)!) === perPage) pages.push((await search(pages.length)).body);
      }
    }
    const found: [string, UserEntity | SourceError][] = [];
    const asked = new Set(batch);
    let strangers = 0;
    for (const p of pages) {
      for (const u of p.users.items) {
        if (asked.has(u.id)) found.push([u.id, u]);
        else strangers++;
      }
    }
    if (strangers > 0) {
      // Users nobody asked for: the search was not applied (a proxy stripped q), so an id missing from it says nothing.
      const error = () => this.unusableAnswer('GET /api/v2/users?q', `${strangers} users not asked for in the answer (the search was not applied)`);
      return [...found, ...unreadableIds(batch, found, error)];
    }
    const unreadable = pages.find((p) => p.users.unreadable > 0)?.users;
    // Users counted by id (a repeated row is no user more), with those that could not be read.
    const read = distinctCount(found, ([id]) => id) + pages.reduce((n, p) => n + p.users.unreadable, 0);
    // Without a total: every id found, a page as long as per_page (it holds every match of ≤ 100 ids), or a last page
    // shorter than the first or empty (the first empty: none of the ids is known).
    const lastLength = usersIn(pages.at(-1)!);
    const reachedEnd = total !== undefined ? read >= matches : read >= batch.length || perPage >= MAX_PER_PAGE || lastLength === 0 || lastLength < perPage;
    if (unreadable === undefined && reachedEnd) return found;
    // Ids the answer did not reach (entries it could not read, or pages past the last one fetched) are errors, not unknown.
    const error = unreadable
      ? () => this.unreadableEntity('GET /api/v2/users?q', 'a user', `users.${unreadable.problem}`)
      : () => this.unusableAnswer('GET /api/v2/users?q', `${read} of ${total === undefined ? `at most ${matches}` : matches} matches returned`);
    return [...found, ...unreadableIds(batch, found, error)];
  }

  /**
   * Users changed at or after an instant, oldest change first (`updated_at:[<since> TO *]`,
   * inclusive), one page of 100. `more`: the vendor holds more past this page.
   */
  async usersChangedSince(since: string, pageIndex: number, deadline?: Deadline): Promise<ChangedPage<UserEntity>> {
    const q = `updated_at:[${luceneTerm(since)} TO *]`;
    const res = await this.fetch({
      route: 'GET /api/v2/users?q=updated_at',
      method: 'GET',
      path: `/api/v2/users?q=${encodeURIComponent(q)}&sort=updated_at%3A1&page=${pageIndex}&per_page=${MAX_PER_PAGE}&include_totals=true`,
      schema: changedPage,
      deadline,
    });
    const { items, unreadable } = res.body.users;
    const seen = firstIndexOf(res.body, pageIndex, MAX_PER_PAGE) + items.length + unreadable;
    const total = res.body.total ?? undefined;
    // No total: a full page may have more after it.
    const more = total !== undefined ? seen < total : items.length + unreadable >= (isCount(res.body.limit) && res.body.limit > 0 ? res.body.limit : MAX_PER_PAGE);
    return { records: items, unreadable, more: more && items.length + unreadable > 0 };
  }

  /** A window of all users, oldest first. */
  listUsers(offset: number, first: number, deadline?: Deadline): Promise<OffsetPage<UserEntity>> {
    return this.pageSize.window(() => this.usersWindow(offset, first, deadline));
  }

  /** Identity's page size, as its pages' `limit` say it. */
  private readonly pageSize = new VendorPageSize(MAX_PER_PAGE);

  /** The listing limit the warn line last named: windows refused together learn it once, and it is said once. */
  private saidListingLimit: number | undefined;

  private async usersWindow(offset: number, first: number, deadline?: Deadline): Promise<OffsetPage<UserEntity>> {
    const fixed = this.pageSize.fixedSize;
    const limit = this.pageSize.listingLimit;
    // Nothing is asked: the vendor lists nothing there, and the resolver refuses the window (its totalCount is never shown).
    if (limit !== undefined && offset >= limit) return { items: [], totalCount: limit, hasNextPage: false, listsAtMost: limit };
    const plan = this.pageSize.plan(offset, first);
    let pages: { body: z.output<typeof page> }[];
    try {
      pages = await Promise.all(plan.pages.map((p) => this.fetch({ route: 'GET /api/v2/users', method: 'GET', path: usersPagePath(p, plan.asked), schema: page, deadline })));
    } catch (error) {
      const end = (plan.pages.at(-1)! + 1) * plan.perPage;
      // Past the first page, a refusal may be the vendor's listing limit (Auth0 lists the first 1,000 results).
      if (!(error instanceof SourceError) || error.status !== 400 || plan.pages.at(-1)! === 0) throw error;
      const learnt = await this.pageSize.learnListingLimit(end, (reach) => this.reaches(reach, deadline));
      // Not a listing limit, or none tighter than the one this plan kept to: the refusal is about something else.
      if (learnt === undefined || learnt >= (limit ?? Infinity)) throw error;
      if (learnt !== this.saidListingLimit) {
        this.saidListingLimit = learnt;
        this.logger.warn(
          { source: this.name, route: 'GET /api/v2/users', listsAtMost: learnt, refusedPage: plan.pages.at(-1), perPage: plan.asked },
          `${this.name} lists only its first ${learnt} users (it refused a page reaching past them): userList ends there, and its totalCount still counts every user`,
        );
      }
      return this.usersWindow(offset, first, deadline);
    }
    // Placed by where the vendor says each page starts (see placeWindow).
    for (let i = 0; i < pages.length; i++) {
      const { body } = pages[i]!;
      const { limit, start } = body;
      // A page past the first that says it starts where another does: the vendor ignored `page` (renamed, stripped by a
      // proxy) and sent its first; placed as the page asked, its users would show where others belong.
      if (plan.pages[i]! > 0 && isCount(start) && isCount(limit) && limit > 0 && start !== plan.pages[i]! * limit) throw this.pageIgnored(plan.pages[i]!, start, limit);
      if (!isCount(limit) || limit === 0) continue;
      // Its users counted by id: a page that repeats one (a replica's row) holds no more than its limit says.
      if (limit < plan.asked && distinctCount(body.users.items, idOfUser) <= limit) this.pageSize.tighter(limit);
      // One that honours per_page, or caps it, never says more: it ignores the parameter (renamed, or stripped by a proxy).
      if (limit > plan.asked) this.pageSize.ignoresPerPage(limit, true);
      else if (limit === plan.asked) this.pageSize.honoured(plan.asked);
    }
    if (this.pageSize.fixedSize !== fixed) this.pageSizeChanged('GET /api/v2/users', plan.asked, this.pageSize.fixedSize);
    const { items, after, end, beyond } = placeWindow(
      pages.map((p, i) => ({ start: firstIndexOf(p.body, plan.pages[i]!, plan.perPage), items: p.body.users.items, size: pageSizeOf(p.body, plan.perPage) })),
      offset,
      first,
      idOfUser,
    );
    const total = pages[0]!.body.total ?? undefined;
    // No total: more follow a user fetched past the window, or a last page as full as asked.
    const more = total !== undefined ? end < total : beyond || lengthOf(pages.at(-1)!.body) >= plan.perPage;
    const totalCount = total ?? end + (more ? 1 : 0);
    const listsAtMost = this.pageSize.listingLimit;
    if (listsAtMost === undefined) return { items, ...(after && { after }), totalCount, hasNextPage: more };
    return { items, ...(after && { after }), totalCount, hasNextPage: more && end < listsAtMost, listsAtMost };
  }

  private pageIgnored(index: number, start: number, limit: number): SourceError {
    return this.unusableAnswer(
      'GET /api/v2/users',
      `page=${index} was answered with a page that starts at ${start} (at ${limit} a page, it starts at ${index * limit}): the page parameter was ignored`,
    );
  }

  /** Whether the list reaches `end`: its one-item page there answered, not refused (400). */
  private async reaches(end: number, deadline?: Deadline): Promise<boolean> {
    try {
      await this.fetch({ route: 'GET /api/v2/users', method: 'GET', path: usersPagePath(end - 1, 1), schema: page, deadline });
      return true;
    } catch (error) {
      if (error instanceof SourceError && error.status === 400) return false;
      throw error;
    }
  }

  /**
   * Changes a profile (PATCH); null when the user does not exist. Safe to repeat:
   * the same PATCH twice leaves the same profile, so it is retried like a read.
   */
  async updateUser(id: string, changes: { name?: string; nickname?: string; picture?: string }, deadline?: Deadline): Promise<UserEntity | null> {
    const res = await this.fetchOrNull({
      route: 'PATCH /api/v2/users/:id',
      method: 'PATCH',
      path: `/api/v2/users/${pathSegment(id)}`,
      body: changes,
      schema: user,
      idempotent: true,
      deadline,
    });
    if (res && res.body.id !== id) throw this.answeredForAnotherUser('PATCH /api/v2/users/:id');
    return res?.body ?? null;
  }

  /** One user by id (GET /users/{id}); null when the identity provider does not know it. */
  async userById(id: string, deadline?: Deadline): Promise<UserEntity | null> {
    const res = await this.fetchOrNull({ route: 'GET /api/v2/users/:id', method: 'GET', path: `/api/v2/users/${pathSegment(id)}`, schema: user, deadline });
    if (res && res.body.id !== id) throw this.answeredForAnotherUser('GET /api/v2/users/:id');
    return res?.body ?? null;
  }
}
