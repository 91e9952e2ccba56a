import {
  getArgumentValues,
  getDirectiveValues,
  GraphQLIncludeDirective,
  GraphQLSkipDirective,
  Kind,
  type GraphQLField,
  type GraphQLObjectType,
  type GraphQLResolveInfo,
  type SelectionNode,
  type SelectionSetNode,
  type FieldNode,
} from 'graphql';
import { canReadPrivate } from '../viewer.js';
import type { GatewayContext } from '../context.js';
import { userFieldStarts } from './user.js';

/**
 * When a root field names its users up front (`user(id)`, `users(ids)`,
 * `viewer`), the nested fields that need only the id — metrics, unread count,
 * notifications, events — are started at once, concurrently with identity,
 * instead of after it: a dashboard costs the slowest vendor, not the sum of
 * two round trips. The field resolvers later load the same keys and get
 * these same calls' answers. Nothing is started for a field the viewer may not read
 * or whose arguments are invalid (the field itself then reports it). Users
 * already in L1 need none of this: their fields resolve right after them.
 */
// `args` come from getArgumentValues, coerced against the field's own definition
// (defaults applied), so they are the generated argument types.
type Starter = (userIds: readonly string[], args: never, ctx: GatewayContext) => void;

const starters: Record<string, Starter> = userFieldStarts;

export function prefetchUserFields(userIds: readonly string[], info: GraphQLResolveInfo, ctx: GatewayContext): void {
  const readable = userIds.filter((id) => canReadPrivate(ctx.viewer, id));
  if (readable.length === 0) return;
  for (const { node, field, start } of prefetchable(info)) {
    try {
      start(readable, getArgumentValues(field, node, info.variableValues) as never, ctx);
    } catch {
      // Invalid arguments: the field's own resolver throws the client's error.
    }
  }
}

interface Prefetchable {
  node: FieldNode;
  field: GraphQLField<unknown, unknown>;
  start: Starter;
}

/**
 * The prefetchable fields under a root field. The walk depends only on the
 * document (yoga reuses the parsed document across requests) unless a
 * directive depends on variables, so it is remembered per field node.
 */
const walked = new WeakMap<FieldNode, Prefetchable[]>();

function prefetchable(info: GraphQLResolveInfo): Prefetchable[] {
  const key = info.fieldNodes.length === 1 ? info.fieldNodes[0]! : undefined;
  const known = key && walked.get(key);
  if (known) return known;
  const fields = (info.schema.getType('User') as GraphQLObjectType).getFields();
  const found: Prefetchable[] = [];
  let dependsOnVariables = false;
  for (const node of selectedFields(info, () => (dependsOnVariables = true))) {
    const start = starters[node.name.value];
    const field = fields[node.name.value];
    if (start && field) found.push({ node, field, start });
  }
  if (key && !dependsOnVariables) walked.set(key, found);
  return found;
}

function* selectedFields(info: GraphQLResolveInfo, sawDirective: () => void): Generator<FieldNode> {
  function* visit(set: SelectionSetNode): Generator<FieldNode> {
    for (const selection of set.selections) {
      if (selection.directives?.length) sawDirective();
      if (!included(selection, info)) continue;
      if (selection.kind === Kind.FIELD) yield selection;
      else if (selection.kind === Kind.INLINE_FRAGMENT) yield* visit(selection.selectionSet);
      else {
        const fragment = info.fragments[selection.name.value];
        if (fragment) yield* visit(fragment.selectionSet);
      }
    }
  }
  for (const node of info.fieldNodes) if (node.selectionSet) yield* visit(node.selectionSet);
}

function included(node: SelectionNode, info: GraphQLResolveInfo): boolean {
  if (!node.directives?.length) return true;
  if (getDirectiveValues(GraphQLSkipDirective, node, info.variableValues)?.if === true) return false;
  return getDirectiveValues(GraphQLIncludeDirective, node, info.variableValues)?.if !== false;
}
