/* eslint-disable */
import * as types from './graphql.js';
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';

/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "query Dashboard($id: ID!) {\n  user(id: $id) {\n    id\n    name\n    avatarUrl\n    metrics {\n      pageViews\n      sessions\n      conversionRate\n    }\n    unreadNotificationCount\n    notifications(first: 5) {\n      totalCount\n      edges {\n        node {\n          id\n          title\n          read\n          createdAt\n        }\n      }\n    }\n  }\n}": typeof types.DashboardDocument,
    "query DeferredDashboard($id: ID!) {\n  user(id: $id) {\n    id\n    name\n    unreadNotificationCount\n    ... @defer(label: \"metrics\") {\n      metrics {\n        pageViews\n        sessions\n      }\n    }\n  }\n}": typeof types.DeferredDashboardDocument,
    "mutation SendNotification($input: SendNotificationInput!) {\n  sendNotification(input: $input) {\n    status\n    deliveries {\n      target\n      state\n    }\n    notification {\n      id\n      title\n    }\n  }\n}": typeof types.SendNotificationDocument,
    "query Sources {\n  sources {\n    name\n    state\n    errorRate\n    rateLimiter\n  }\n}": typeof types.SourcesDocument,
    "mutation UpdateProfile($input: UpdateProfileInput!) {\n  updateProfile(input: $input) {\n    status\n    replayed\n    deliveries {\n      target\n      state\n      attempts\n      error {\n        code\n      }\n    }\n    user {\n      id\n      name\n      nickname\n    }\n  }\n}": typeof types.UpdateProfileDocument,
    "query UserList($first: Int, $after: String) {\n  userList(first: $first, after: $after) {\n    totalCount\n    edges {\n      node {\n        id\n        name\n        nickname\n      }\n    }\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n  }\n}": typeof types.UserListDocument,
    "query Viewer {\n  viewer {\n    id\n    name\n    email\n    unreadNotificationCount\n  }\n}": typeof types.ViewerDocument,
};
const documents: Documents = {
    "query Dashboard($id: ID!) {\n  user(id: $id) {\n    id\n    name\n    avatarUrl\n    metrics {\n      pageViews\n      sessions\n      conversionRate\n    }\n    unreadNotificationCount\n    notifications(first: 5) {\n      totalCount\n      edges {\n        node {\n          id\n          title\n          read\n          createdAt\n        }\n      }\n    }\n  }\n}": types.DashboardDocument,
    "query DeferredDashboard($id: ID!) {\n  user(id: $id) {\n    id\n    name\n    unreadNotificationCount\n    ... @defer(label: \"metrics\") {\n      metrics {\n        pageViews\n        sessions\n      }\n    }\n  }\n}": types.DeferredDashboardDocument,
    "mutation SendNotification($input: SendNotificationInput!) {\n  sendNotification(input: $input) {\n    status\n    deliveries {\n      target\n      state\n    }\n    notification {\n      id\n      title\n    }\n  }\n}": types.SendNotificationDocument,
    "query Sources {\n  sources {\n    name\n    state\n    errorRate\n    rateLimiter\n  }\n}": types.SourcesDocument,
    "mutation UpdateProfile($input: UpdateProfileInput!) {\n  updateProfile(input: $input) {\n    status\n    replayed\n    deliveries {\n      target\n      state\n      attempts\n      error {\n        code\n      }\n    }\n    user {\n      id\n      name\n      nickname\n    }\n  }\n}": types.UpdateProfileDocument,
    "query UserList($first: Int, $after: String) {\n  userList(first: $first, after: $after) {\n    totalCount\n    edges {\n      node {\n        id\n        name\n        nickname\n      }\n    }\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n  }\n}": types.UserListDocument,
    "query Viewer {\n  viewer {\n    id\n    name\n    email\n    unreadNotificationCount\n  }\n}": types.ViewerDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 *
 *
 * @example
 * ```ts
 * const query = graphql(`query GetUser($id: ID!) { user(id: $id) { name } }`);
 * ```
 *
 * The query argument is unknown!
 * Please regenerate the types.
 */
export function graphql(source: string): unknown;

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "query Dashboard($id: ID!) {\n  user(id: $id) {\n    id\n    name\n    avatarUrl\n    metrics {\n      pageViews\n      sessions\n      conversionRate\n    }\n    unreadNotificationCount\n    notifications(first: 5) {\n      totalCount\n      edges {\n        node {\n          id\n          title\n          read\n          createdAt\n        }\n      }\n    }\n  }\n}"): (typeof documents)["query Dashboard($id: ID!) {\n  user(id: $id) {\n    id\n    name\n    avatarUrl\n    metrics {\n      pageViews\n      sessions\n      conversionRate\n    }\n    unreadNotificationCount\n    notifications(first: 5) {\n      totalCount\n      edges {\n        node {\n          id\n          title\n          read\n          createdAt\n        }\n      }\n    }\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "query DeferredDashboard($id: ID!) {\n  user(id: $id) {\n    id\n    name\n    unreadNotificationCount\n    ... @defer(label: \"metrics\") {\n      metrics {\n        pageViews\n        sessions\n      }\n    }\n  }\n}"): (typeof documents)["query DeferredDashboard($id: ID!) {\n  user(id: $id) {\n    id\n    name\n    unreadNotificationCount\n    ... @defer(label: \"metrics\") {\n      metrics {\n        pageViews\n        sessions\n      }\n    }\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation SendNotification($input: SendNotificationInput!) {\n  sendNotification(input: $input) {\n    status\n    deliveries {\n      target\n      state\n    }\n    notification {\n      id\n      title\n    }\n  }\n}"): (typeof documents)["mutation SendNotification($input: SendNotificationInput!) {\n  sendNotification(input: $input) {\n    status\n    deliveries {\n      target\n      state\n    }\n    notification {\n      id\n      title\n    }\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "query Sources {\n  sources {\n    name\n    state\n    errorRate\n    rateLimiter\n  }\n}"): (typeof documents)["query Sources {\n  sources {\n    name\n    state\n    errorRate\n    rateLimiter\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation UpdateProfile($input: UpdateProfileInput!) {\n  updateProfile(input: $input) {\n    status\n    replayed\n    deliveries {\n      target\n      state\n      attempts\n      error {\n        code\n      }\n    }\n    user {\n      id\n      name\n      nickname\n    }\n  }\n}"): (typeof documents)["mutation UpdateProfile($input: UpdateProfileInput!) {\n  updateProfile(input: $input) {\n    status\n    replayed\n    deliveries {\n      target\n      state\n      attempts\n      error {\n        code\n      }\n    }\n    user {\n      id\n      name\n      nickname\n    }\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "query UserList($first: Int, $after: String) {\n  userList(first: $first, after: $after) {\n    totalCount\n    edges {\n      node {\n        id\n        name\n        nickname\n      }\n    }\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n  }\n}"): (typeof documents)["query UserList($first: Int, $after: String) {\n  userList(first: $first, after: $after) {\n    totalCount\n    edges {\n      node {\n        id\n        name\n        nickname\n      }\n    }\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "query Viewer {\n  viewer {\n    id\n    name\n    email\n    unreadNotificationCount\n  }\n}"): (typeof documents)["query Viewer {\n  viewer {\n    id\n    name\n    email\n    unreadNotificationCount\n  }\n}"];

export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}

export type DocumentType<TDocumentNode extends DocumentNode<any, any>> = TDocumentNode extends DocumentNode<  infer TType,  any>  ? TType  : never;