import { readdirSync, readFileSync } from 'node:fs';
import { makeExecutableSchema } from '@graphql-tools/schema';
import type { GraphQLSchema } from 'graphql';
import { resolvers } from './resolvers/index.js';
import type { AnySourceDefinition } from './sources/define-source.js';

/** schema/ sits beside src/ and dist/, so this resolves from either. */
const SCHEMA_DIR = new URL('../schema/', import.meta.url);

export function loadTypeDefs(): string[] {
  return readdirSync(SCHEMA_DIR)
    .filter((f) => f.endsWith('.graphql'))
    .sort()
    .map((f) => readFileSync(new URL(f, SCHEMA_DIR), 'utf8'));
}

/** schema/*.graphql with the resolvers, plus what each source adds (its `graphql`: SDL and resolvers). */
export function buildSchema(sources: readonly AnySourceDefinition[] = []): GraphQLSchema {
  const added = sources.flatMap((s) => (s.graphql ? [s.graphql] : []));
  return makeExecutableSchema({ typeDefs: [...loadTypeDefs(), ...added.map((g) => g.typeDefs)], resolvers: [resolvers, ...added.map((g) => g.resolvers)] });
}
