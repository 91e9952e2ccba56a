import { GraphQLError, type ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/**
 * Client mistakes that arrive without a code get the one clients handle:
 * a variable that does not fit its type (an unknown enum value, a string for
 * an Int) is BAD_USER_INPUT; a document over one of graphql-armor's limits is
 * GRAPHQL_VALIDATION_FAILED with status 400, like every other invalid document.
 */
export function useInputErrorCodes(): Plugin {
  return {
    onValidate() {
      return ({ valid, result, setResult }) => {
        if (valid || !result.some((e) => e.extensions?.code === undefined)) return;
        setResult(
          result.map((e) =>
            e.extensions?.code === undefined
              ? new GraphQLError(e.message, { nodes: e.nodes, source: e.source, positions: e.positions, extensions: { ...e.extensions, code: 'GRAPHQL_VALIDATION_FAILED', http: { status: 400 } } })
              : e,
          ),
        );
      };
    },
    onExecute() {
      return {
        onExecuteDone({ result, setResult }) {
          if (Symbol.asyncIterator in result) return;
          const { errors } = result as ExecutionResult;
          if (!errors?.some(isVariableError)) return;
          setResult({
            ...result,
            errors: errors.map((e) => (isVariableError(e) ? new GraphQLError(e.message, { nodes: e.nodes, source: e.source, positions: e.positions, extensions: { code: 'BAD_USER_INPUT' } }) : e)),
          });
        },
      };
    },
  };
}

function isVariableError(e: GraphQLError): boolean {
  return e.path === undefined && e.extensions.code === undefined && /^Variable "\$[^"]+" got invalid value/.test(e.message);
}
