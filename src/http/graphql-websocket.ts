import type { Server } from 'node:http';
import { GraphQLError, type ExecutionArgs, type ExecutionResult } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import type { YogaServerInstance } from 'graphql-yoga';
import { WebSocketServer } from 'ws';
import { nestsDeeperThan } from '../json-depth.js';
import { MAX_REQUEST_JSON_DEPTH, TOO_DEEP } from './request-body.js';

export interface GraphQLWebSocketOptions {
  /** Server pings this often; a client that misses one is dropped. @default 12000 */
  keepAliveMs?: number;
}

/** yoga's enveloped executors, carried in rootValue from onSubscribe to graphql-ws's execute/subscribe. */
interface Executors {
  execute: (args: ExecutionArgs) => ExecutionResult | Promise<ExecutionResult | AsyncIterable<ExecutionResult>>;
  subscribe: (args: ExecutionArgs) => ExecutionResult | AsyncIterable<ExecutionResult> | Promise<ExecutionResult | AsyncIterable<ExecutionResult>>;
}

/**
 * GraphQL over WebSocket (the graphql-ws protocol) on the same path as HTTP,
 * through the same plugins: each operation is enveloped by yoga as a request
 * would be, so auth, limits and logging apply. Browsers cannot set headers on
 * a WebSocket: the token comes in `connectionParams.authorization`
 * (`Bearer <jwt>`), checked when each operation starts.
 */
export function serveGraphQLOverWebSocket<C extends object>(
  server: Server,
  yoga: YogaServerInstance<Record<string, unknown>, C>,
  options: GraphQLWebSocketOptions = {},
): { close(): Promise<void> } {
  const wss = new WebSocketServer({ server, path: yoga.graphqlEndpoint });
  const disposable = useServer(
    {
      execute: (args) => (args.rootValue as Executors).execute(args),
      subscribe: (args) => (args.rootValue as Executors).subscribe(args),
      onSubscribe: async (ctx, _id, payload) => {
        // As for a request over HTTP (request-body.ts): past it, the response cache's key threw, and graphql-ws closed the socket with the error's message.
        if (nestsDeeperThan(payload, MAX_REQUEST_JSON_DEPTH)) return [new GraphQLError(TOO_DEEP, { extensions: { code: 'BAD_REQUEST' } })];
        const authorization = ctx.connectionParams?.authorization;
        const request = new Request(`http://localhost${yoga.graphqlEndpoint}`, {
          method: 'POST',
          headers: typeof authorization === 'string' ? { authorization, 'content-type': 'application/json' } : { 'content-type': 'application/json' },
        });
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({ ...ctx, request, params: payload });
        let document;
        try {
          document = parse(payload.query);
        } catch (error) {
          return [error instanceof GraphQLError ? error : new GraphQLError('The document does not parse.')];
        }
        const errors = validate(schema, document);
        if (errors.length > 0) return errors;
        let contextValue: unknown;
        try {
          contextValue = await contextFactory();
        } catch (error) {
          // Auth and caller limits refuse here, with their own codes (UNAUTHENTICATED, RATE_LIMITED).
          return [error instanceof GraphQLError ? error : new GraphQLError('Unexpected error.', { extensions: { code: 'INTERNAL_SERVER_ERROR' } })];
        }
        return { schema, operationName: payload.operationName, document, variableValues: payload.variables, contextValue, rootValue: { execute, subscribe } };
      },
    },
    wss,
    options.keepAliveMs ?? 12_000,
  );
  return {
    close: async () => {
      await disposable.dispose();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
