import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span, type TextMapGetter } from '@opentelemetry/api';
import { getOperationAST, type ExecutionResult, type GraphQLError } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import { errorCode, partErrors, type IncrementalPart } from './graphql-results.js';

const tracer = trace.getTracer('rest-graphql-gateway');

const fromHeaders: TextMapGetter<Headers> = {
  get: (headers, key) => headers.get(key) ?? undefined,
  keys: (headers) => [...headers.keys()],
};

function recordErrors(span: Span, errors: readonly GraphQLError[]): void {
  if (errors.length === 0) return;
  const codes = [...new Set(errors.map(errorCode))];
  span.setAttribute('graphql.errors', errors.length);
  span.setAttribute('gateway.error_codes', codes);
  span.setStatus({ code: SpanStatusCode.ERROR, message: codes.join(', ') });
}

/**
 * One span per GraphQL request (`query Dashboard`), continuing the client's
 * trace when it sends a W3C `traceparent`. It is the active span while the
 * operation runs, so each vendor call's span (HttpSource) is its child and
 * log lines carry its trace id. Added only when tracing is on.
 */
export function useTracing(): Plugin {
  return {
    instrumentation: {
      request({ request }, wrapped) {
        if (!request.url.includes('/graphql')) return wrapped();
        const parent = propagation.extract(ROOT_CONTEXT, request.headers, fromHeaders);
        const span = tracer.startSpan('graphql', { kind: SpanKind.SERVER, attributes: { 'http.request.method': request.method } }, parent);
        return context.with(trace.setSpan(parent, span), () => {
          try {
            const done = wrapped();
            if (done instanceof Promise) return done.finally(() => span.end());
            span.end();
            return done;
          } catch (error) {
            span.end();
            throw error;
          }
        });
      },
    },
    onExecute({ args }) {
      const span = trace.getActiveSpan();
      if (!span) return undefined;
      const operation = getOperationAST(args.document, args.operationName);
      const type = operation?.operation ?? 'query';
      const name = operation?.name?.value ?? args.operationName ?? null;
      span.updateName(name ? `${type} ${name}` : type);
      span.setAttribute('graphql.operation.type', type);
      if (name) span.setAttribute('graphql.operation.name', name);
      return {
        onExecuteDone({ result }) {
          if (!isAsyncIterable(result)) return recordErrors(span, (result as ExecutionResult).errors ?? []);
          const errors: GraphQLError[] = [];
          return {
            onNext: ({ result: part }) => void errors.push(...partErrors(part as IncrementalPart)),
            onEnd: () => recordErrors(span, errors),
          };
        },
      };
    },
  };
}
