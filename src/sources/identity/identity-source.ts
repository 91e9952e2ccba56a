import { z } from 'zod';
import type { Deadline } from '../../resilience/deadline.js';
import { HttpSource, pathSegment } from '../http-source.js';
import type { ChangedPage, ChangedRecord, OffsetPage, UserEntity } from '../models.js';
import type { SourceError } from '../../errors.js';
import { isoFromDateString, count, lenientObjectAs, optional, readableItems } from '../normalize.js';
import { lookupInChunks, planPages, unreadableIds } from '../paging.js';

/** Identity (Auth0 Management API v2 dialect): Lucene batch search, 0-based pages, ISO timestamps. */
const MAX_PER_PAGE = 100;
const MAX_IDS_PER_QUERY = 100;

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
    lastLoginAt: u.last_login ?? null,
  };
}

const user = lenientObjectAs(userFields, toUserEntity);

/** A user as the change feed reads it: the profile, and the instant it last changed (null when unreadable: applied, but never a mark). */
const changedUser = lenientObjectAs({ ...userFields, updated_at: optional(isoFromDateString) }, (u): ChangedRecord<UserEntity> => ({
  id: u.user_id,
  updatedAt: u.updated_at ?? null,
  value: toUserEntity(u),
}));

const page = z.object({ start: z.unknown().optional(), limit: z.unknown().optional(), length: z.unknown().optional(), total: count, users: readableItems(user) });
const changedPage = z.object({ start: z.unknown().optional(), limit: z.unknown().optional(), length: z.unknown().optional(), total: count, users: readableItems(changedUser) });

/** Lucene's special characters escaped, for a term outside quotes (an ISO instant's colons). */
function luceneTerm(value: string): string {
  return value.replace(/[+\-&|!(){}[\]^"~*?:\\/ ]/g, '\\$&');
}

/** A Lucene phrase: backslash and quote escaped, so an id can never close the phrase or add a clause. */
function phrase(value: string): string {
  return `"${value.replace(/[\\"]/g, '\\$&')}"`;
}

export class IdentitySource extends HttpSource {
  /**
   * Users by id through the search endpoint, 100 ids a call; unknown ids are
   * absent from the map. When the answer held users that could not be read
   * (no user_id), the ids it did not answer for are errors, not unknown.
   */
  usersByIds(ids: readonly string[], deadline?: Deadline): Promise<Map<string, UserEntity | SourceError>> {
    return lookupInChunks(ids, MAX_IDS_PER_QUERY, async (batch) => {
      const q = `user_id:(${batch.map(phrase).join(' OR ')})`;
      const res = await this.fetch({
        route: 'GET /api/v2/users?q',
        method: 'GET',
        path: `/api/v2/users?q=${encodeURIComponent(q)}&page=0&per_page=${MAX_PER_PAGE}&include_totals=true`,
        schema: page,
        deadline,
        batchSize: batch.length,
      });
      const { items, unreadable, problem } = res.body.users;
      const found: [string, UserEntity | SourceError][] = items.map((u) => [u.id, u]);
      return unreadable === 0 ? found : [...found, ...unreadableIds(batch, found, () => this.unreadableEntity('GET /api/v2/users?q', 'a user', `users.${problem}`))];
    });
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
    const seen = pageIndex * MAX_PER_PAGE + items.length + unreadable;
    return { records: items, unreadable, more: seen < res.body.total && items.length + unreadable > 0 };
  }

  /** A window of all users, oldest first. */
  async listUsers(offset: number, first: number, deadline?: Deadline): Promise<OffsetPage<UserEntity>> {
    const plan = planPages(offset, first, MAX_PER_PAGE);
    const pages = await Promise.all(
      plan.pages.map((p) =>
        this.fetch({
          route: 'GET /api/v2/users',
          method: 'GET',
          path: `/api/v2/users?page=${p}&per_page=${plan.perPage}&include_totals=true&sort=created_at%3A1`,
          schema: page,
          deadline,
        }),
      ),
    );
    const items = pages.flatMap((p) => p.body.users.items).slice(plan.skip, plan.skip + first);
    const totalCount = pages[0]!.body.total;
    return { items, totalCount, hasNextPage: offset + items.length < totalCount };
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
    return res?.body ?? null;
  }

  /** One user by id (GET /users/{id}); null when the identity provider does not know it. */
  async userById(id: string, deadline?: Deadline): Promise<UserEntity | null> {
    const res = await this.fetchOrNull({ route: 'GET /api/v2/users/:id', method: 'GET', path: `/api/v2/users/${pathSegment(id)}`, schema: user, deadline });
    return res?.body ?? null;
  }
}
