import type { GraphQLResolveInfo } from 'graphql';
import type { Served } from '../cache/entity-cache.js';
import type { GatewayContext } from '../context.js';
import { badUserInput, SourceError } from '../errors.js';
import { mapMaybePromise, type MaybePromise } from '../maybe-promise.js';
import type { QueryResolvers } from '../generated/resolvers.js';
import type { OffsetPage, UserEntity, UserPageKey } from '../sources/models.js';
import { checkFirst, offsetCursor, offsetFrom } from './cursors.js';
import { prefetchUserFields } from './prefetch.js';

export const MAX_IDS_PER_QUERY = 500;
const DRIFT_KIND = { unknown: 'UNKNOWN', missing: 'MISSING', type_changed: 'TYPE_CHANGED' } as const;
const MAX_ID_LENGTH = 256;

function checkId(id: string, argument: string): void {
  if (id.length === 0 || id.length > MAX_ID_LENGTH) throw badUserInput(`"${argument}" must be 1 to ${MAX_ID_LENGTH} characters.`, argument);
}

/** The users, each at once when fresh in L1; the others as one batch, with their nested fields started alongside identity. */
function loadUsers(ids: readonly string[], info: GraphQLResolveInfo, ctx: GatewayContext): MaybePromise<Served<UserEntity | null>>[] {
  const loaded = ctx.loaders.user.loadMany(ids);
  const coming = ids.filter((_id, i) => loaded[i] instanceof Promise);
  if (coming.length > 0) prefetchUserFields(coming, info, ctx);
  return loaded;
}

/**
 * No single vendor blanks the page: when identity fails for a user whose id is
 * known (asked for, or the token's), the user still answers with that id,
 * identity's fields carry the typed error at their paths, and every other
 * vendor's fields resolve. Only identity's "no such user" makes the user null.
 */
function orIdentityError(id: string, user: MaybePromise<UserEntity | null>): MaybePromise<UserEntity | null> {
  if (!(user instanceof Promise)) return user;
  return user.catch((error: unknown) => {
    if (!(error instanceof SourceError)) throw error;
    return { id, email: null, emailVerified: null, name: null, nickname: null, avatarUrl: null, createdAt: null, lastLoginAt: null, identityError: error };
  });
}

export const Query: QueryResolvers = {
  serverInfo: (_parent, _args, ctx) => ({ version: process.env.npm_package_version ?? '0.1.0', simulatedUpstreams: ctx.simulatedUpstreams }),

  user: (_parent, { id }, ctx, info) => {
    checkId(id, 'id');
    return orIdentityError(id, ctx.stale.take(loadUsers([id], info, ctx)[0]!, info));
  },

  users: (_parent, { ids }, ctx, info) => {
    if (ids.length > MAX_IDS_PER_QUERY) throw badUserInput(`"ids" may hold at most ${MAX_IDS_PER_QUERY} ids.`, 'ids');
    for (const id of ids) checkId(id, 'ids');
    // One value or promise per id: a failed or unknown id is a null in its place, the rest still resolve.
    // graphql-js completes a list of promises item by item; the generated type only knows whole lists.
    return loadUsers(ids, info, ctx).map((served, i) => orIdentityError(ids[i]!, ctx.stale.take(served, info, i))) as unknown as Promise<UserEntity>[];
  },

  userList: (_parent, { first, after }, ctx, info) => {
    const key: UserPageKey = { offset: offsetFrom('users', after), first: checkFirst(first, 100) };
    // Through a loader and its cache like every other read (its fields' loads batch as usual).
    return mapMaybePromise(ctx.stale.take(ctx.loaders.entity<UserPageKey, OffsetPage<UserEntity>>('identity.userPage').load(key), info), (page) => {
      if (page.listsAtMost !== undefined && key.offset >= page.listsAtMost) {
        throw badUserInput(`"after" is past the first ${page.listsAtMost} users, which is as far as the identity provider lists users.`, 'after');
      }
      // The page fills the per-user entries: a user(id) after this list is a cache hit.
      ctx.caches.user.prime(page.items.map((user) => [user.id, user] as const));
      const edges = page.items.map((user, i) => {
        ctx.loaders.user.prime(user.id, { value: user, stale: null });
        return { cursor: offsetCursor('users', page.after?.[i] ?? key.offset + i + 1), node: user };
      });
      return { edges, totalCount: page.totalCount, pageInfo: { hasNextPage: page.hasNextPage, endCursor: edges.at(-1)?.cursor ?? null } };
    });
  },

  sources: async (_parent, _args, ctx) => (await ctx.sourceHealth()).map((s) => ({ ...s, drift: s.drift.map((d) => ({ ...d, kind: DRIFT_KIND[d.kind] })) })),

  viewer: (_parent, _args, ctx, info) => {
    return orIdentityError(ctx.viewer.userId, ctx.stale.take(loadUsers([ctx.viewer.userId], info, ctx)[0]!, info));
  },
};
