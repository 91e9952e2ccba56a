import type { Resolvers } from '../generated/resolvers.js';
import { deliveries, Mutation } from './mutation.js';
import { Query } from './query.js';
import { Subscription } from './subscription.js';
import { DateTime, JSONScalar } from './scalars.js';
import { User } from './user.js';

export const resolvers: Resolvers = {
  DateTime,
  JSON: JSONScalar,
  Query: { ...Query, deliveries },
  Mutation,
  Subscription,
  User,
};
