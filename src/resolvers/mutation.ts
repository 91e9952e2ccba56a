import { GraphQLError } from 'graphql';
import { canReadPrivate } from '../viewer.js';
import { badUserInput, storeUnavailable } from '../errors.js';
import type { GatewayContext } from '../context.js';
import type { MutationResolvers, QueryResolvers } from '../generated/resolvers.js';
import { DeliveryLogUnavailableError, NotRetryableError } from '../writes/delivery-queue.js';
import { checkFirst, offsetCursor, offsetFrom } from './cursors.js';

const MAX_ID_LENGTH = 256;
const MAX_IDS = 1000;

function mustWriteFor(ctx: GatewayContext, userId: string): void {
  if (!canReadPrivate(ctx.viewer, userId)) throw new GraphQLError('You may only change your own data.', { extensions: { code: 'FORBIDDEN' } });
}

function mustBeAdmin(ctx: GatewayContext, what: string): void {
  if (!ctx.viewer.admin) throw new GraphQLError(`Only an admin may ${what}.`, { extensions: { code: 'FORBIDDEN' } });
}

/** A string argument within bounds and not blank; `field` is named in the error. */
function text(value: string, field: string, max: number): string {
  if (value.trim().length === 0) throw badUserInput(`"${field}" must not be empty.`, field);
  if (value.length > max) throw badUserInput(`"${field}" may be at most ${max} characters (got ${value.length}).`, field);
  return value;
}

function id(value: string, field: string): string {
  if (value.length === 0 || value.length > MAX_ID_LENGTH) throw badUserInput(`"${field}" must be 1 to ${MAX_ID_LENGTH} characters.`, field);
  return value;
}

function idempotencyKey(value: string | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  if (value.length === 0 || value.length > 200) throw badUserInput('"idempotencyKey" must be 1 to 200 characters.', 'idempotencyKey');
  return value;
}

function avatarUrl(value: string): string {
  text(value, 'avatarUrl', 300);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw badUserInput('"avatarUrl" must be an http(s) URL.', 'avatarUrl');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw badUserInput('"avatarUrl" must be an http(s) URL.', 'avatarUrl');
  return value;
}

/** Validation and authorization happen here, before anything is written anywhere; the write model is src/writes/. */
export const Mutation: MutationResolvers = {
  updateProfile: async (_parent, { input }, ctx) => {
    const userId = id(input.userId, 'userId');
    mustWriteFor(ctx, userId);
    const changes = {
      userId,
      ...(input.name != null ? { name: text(input.name, 'name', 300) } : {}),
      ...(input.nickname != null ? { nickname: text(input.nickname, 'nickname', 300) } : {}),
      ...(input.avatarUrl != null ? { avatarUrl: avatarUrl(input.avatarUrl) } : {}),
    };
    if (Object.keys(changes).length === 1) throw badUserInput('Give at least one of "name", "nickname", "avatarUrl".', 'input');
    const payload = await ctx.writes.updateProfile(ctx.viewer, changes, idempotencyKey(input.idempotencyKey), ctx.deadline);
    return { ...payload, user: payload.result };
  },

  sendNotification: async (_parent, { input }, ctx) => {
    const userId = id(input.userId, 'userId');
    mustWriteFor(ctx, userId);
    if (input.channel === 'OTHER') throw badUserInput('"channel" OTHER stands for channels this server does not know: send EMAIL, PUSH or IN_APP.', 'channel');
    const notification = { userId, title: text(input.title, 'title', 200), body: text(input.body, 'body', 5000), channel: input.channel };
    const payload = await ctx.writes.sendNotification(ctx.viewer, notification, idempotencyKey(input.idempotencyKey), ctx.deadline);
    return { ...payload, notification: payload.result };
  },

  markNotificationsRead: async (_parent, args, ctx) => {
    const userId = id(args.userId, 'userId');
    mustWriteFor(ctx, userId);
    if (args.ids.length === 0) throw badUserInput('"ids" must name at least one notification.', 'ids');
    if (args.ids.length > MAX_IDS) throw badUserInput(`"ids" may hold at most ${MAX_IDS} ids.`, 'ids');
    for (const n of args.ids) id(n, 'ids');
    const payload = await ctx.writes.markNotificationsRead(ctx.viewer, { userId, ids: args.ids }, idempotencyKey(args.idempotencyKey), ctx.deadline);
    return { ...payload, updated: payload.result };
  },

  retryDelivery: async (_parent, args, ctx) => {
    mustBeAdmin(ctx, 'retry deliveries');
    try {
      const record = await ctx.deliveries.retry(args.id);
      if (!record) throw badUserInput('No delivery with this id.', 'id');
      return record;
    } catch (e) {
      if (e instanceof NotRetryableError) throw badUserInput(e.message, 'id');
      if (e instanceof DeliveryLogUnavailableError) throw storeUnavailable('The delivery log');
      throw e;
    }
  },
};

export const deliveries: NonNullable<QueryResolvers['deliveries']> = async (_parent, { state, first, after }, ctx) => {
  mustBeAdmin(ctx, 'list deliveries');
  const count = checkFirst(first, 100);
  const offset = offsetFrom('deliveries', after);
  const page = await ctx.deliveries.list(state ?? null, offset, count).catch((e: unknown) => {
    throw e instanceof DeliveryLogUnavailableError ? storeUnavailable('The delivery log') : e;
  });
  const edges = page.items.map((node, i) => ({ cursor: offsetCursor('deliveries', offset + i + 1), node }));
  return { edges, pageInfo: { hasNextPage: page.hasNextPage, endCursor: edges.at(-1)?.cursor ?? null } };
};
