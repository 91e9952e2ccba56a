import { GraphQLError, type ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/**
 * A variable that does not fit its type (an unknown enum value, a string for
 * an Int) is the client's mistake, but graphql-js reports it without a code.
 * It gets BAD_USER_INPUT, as clients expect for every input error.
 */
export function useInputErrorCodes(): Plugin {
  return {
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
