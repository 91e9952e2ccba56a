import type { ExecutionResult, GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { SourceError } from '../errors.js';

/** A part of an incremental response (@defer/@stream): its own errors, and each incremental payload's. */
export type IncrementalPart = ExecutionResult & { incremental?: readonly { errors?: readonly GraphQLError[] }[] };

/** Every error a result or a later part carries. */
export function partErrors(part: IncrementalPart): GraphQLError[] {
  return [...(part.errors ?? []), ...(part.incremental ?? []).flatMap((i) => i.errors ?? [])];
}

/** The code the client will see (errors are masked after the plugins that read this: a source failure still carries its SourceError here). */
export function errorCode(e: GraphQLError): string {
  if (typeof e.extensions?.code === 'string') return e.extensions.code;
  return e.originalError instanceof SourceError ? e.originalError.code : 'INTERNAL_SERVER_ERROR';
}

/**
 * What an onExecute hook returns to be called when the operation is done. Made once per plugin, not per operation:
 * a closure made per request is a new function each time, and V8 optimizes it again and again (bench/RESULTS.md,
 * session 19); the operation is in the `args` envelop hands to onExecuteDone.
 */
export type ExecuteDoneHooks<Context extends Record<string, unknown> = Record<never, never>> = Exclude<Awaited<ReturnType<NonNullable<Plugin<Context>['onExecute']>>>, void>;
