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
  // graphql-jit reads fields without a resolver as plain properties, outside its error handling: a getter that threw
  // there (CompactMetrics makes the series on read) would leave the request unanswered instead of failing the field.
  Metrics: { series: (metrics) => metrics.series },
};
