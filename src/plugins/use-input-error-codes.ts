import { GraphQLError, type ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/**
 * Client mistakes that arrive without a code get the one clients handle, and a
 * 400: a variable that does not fit its type (an unknown enum value, a string
 * for an Int, null for a non-null) is BAD_USER_INPUT; a document over one of
 * graphql-armor's validation limits (depth, cost, aliases, directives) is
 * GRAPHQL_VALIDATION_FAILED, like every other invalid document (over the token
 * limit, it fails while parsing and yoga codes it GRAPHQL_PARSE_FAILED). Field errors
 * (those with a path) are not touched.
 */
export function useInputErrorCodes(): Plugin {
  return {
    onResultProcess({ result, setResult }) {
      if (Array.isArray(result) || Symbol.asyncIterator in result) return;
      const { errors } = result as ExecutionResult;
      if (!errors?.some((e) => codeFor(e) !== null)) return;
      setResult({
        ...(result as ExecutionResult),
        errors: errors.map((e) => {
          const code = codeFor(e);
          return code === null
            ? e
            : new GraphQLError(e.message, { nodes: e.nodes, source: e.source, positions: e.positions, extensions: { ...e.extensions, code, http: { status: 400 } } });
        }),
      });
    },
  };
}

function codeFor(e: GraphQLError): string | null {
  if (e.path !== undefined || e.extensions?.code !== undefined) return null;
  if (/^Variable "\$[^"]+" (got invalid value|of non-null type .* must not be null|of required type .* was not provided)/.test(e.message)) return 'BAD_USER_INPUT';
  if (/^Syntax Error: (Query depth limit|Query Cost limit|Aliases limit|Directives limit)/.test(e.message)) return 'GRAPHQL_VALIDATION_FAILED';
  return null;
}
