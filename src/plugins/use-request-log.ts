import { randomUUID } from 'node:crypto';
import { getOperationAST, type ExecutionResult, type GraphQLError } from 'graphql';
import { SourceError } from '../errors.js';
import type { Plugin } from 'graphql-yoga';
import type { StaleField } from '../cache/stale-report.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { SourceFailure, SourceFailureLog } from '../observability/source-failure-log.js';

const REQUEST_ID = /^[\w.:-]{1,128}$/;

interface RequestRecord {
  id: string;
  startedAt: number;
  operation?: string | undefined;
  errors?: number;
  failures?: SourceFailure[];
}

/** Per source, what failed in one response: fields null with a source error, fields served stale because of one. */
function sourceFailures(errors: readonly GraphQLError[], stale: readonly StaleField[]): SourceFailure[] {
  const bySource = new Map<string, SourceFailure>();
  const entry = (error: Pick<SourceFailure, 'source' | 'code'>) => {
    let failure = bySource.get(error.source);
    if (!failure) bySource.set(error.source, (failure = { source: error.source, code: error.code, fields: 0, stale: 0 }));
    return failure;
  };
  for (const e of errors) {
    const original = e.originalError;
    if (!(original instanceof SourceError)) continue;
    const failure = entry(original);
    failure.fields++;
    failure.detail ??= original.detail;
    failure.status ??= original.status;
  }
  for (const field of stale) if (field.reason === 'SOURCE_ERROR' && field.code) entry({ source: field.source, code: field.code }).stale++;
  return [...bySource.values()];
}

/**
 * One log line per request — request id, operation, status, duration — and
 * the operation metrics; a warn line per failing source (SourceFailureLog). The request id is the caller's `x-request-id` when it
 * looks like one (so a trace spans services), a new UUID otherwise; it goes
 * back in the response's `x-request-id`.
 */
export interface RequestLogOptions {
  /** The `request` line goes out at info; below it, none. */
  logger: Logger;
  /** Operation counts, durations and error codes. */
  metrics: Metrics;
  /** Where each failing source's warn line goes (summed up per interval when it repeats). */
  failures: SourceFailureLog;
}

export function useRequestLog({ logger, metrics, failures }: RequestLogOptions): Plugin {
  const requests = new WeakMap<Request, RequestRecord>();
  return {
    onRequest({ request }) {
      const incoming = request.headers.get('x-request-id');
      requests.set(request, { id: incoming && REQUEST_ID.test(incoming) ? incoming : randomUUID(), startedAt: performance.now() });
    },
    onParams({ request, params }) {
      const record = requests.get(request);
      if (record && typeof params.operationName === 'string') record.operation = params.operationName;
    },
    onExecute({ args }) {
      const startedAt = performance.now();
      const operation = getOperationAST(args.document, args.operationName);
      const name = metrics.operationLabel(operation?.name?.value ?? args.operationName);
      const type = operation?.operation ?? 'unknown';
      const context = args.contextValue as { request: Request; stale?: { fields: StaleField[] } };
      const record = requests.get(context.request);
      if (record && operation?.name) record.operation = operation.name.value;
      return {
        onExecuteDone({ result }) {
          if (Symbol.asyncIterator in result) return;
          const { errors } = result as ExecutionResult;
          metrics.countOperation(name, type, (performance.now() - startedAt) / 1000, Boolean(errors?.length));
          for (const e of errors ?? []) metrics.operationErrors.labels(name, errorCode(e)).inc();
          if (record) {
            record.errors = errors?.length ?? 0;
            if (errors?.length || context.stale?.fields.length) record.failures = sourceFailures(errors ?? [], context.stale?.fields ?? []);
          }
        },
      };
    },
    onResponse({ request, response }) {
      const record = requests.get(request);
      if (!record) return;
      response.headers.set('x-request-id', record.id);
      for (const failure of record.failures ?? []) failures.record(record.id, record.operation ?? null, failure);
      if (!logger.isLevelEnabled('info')) return;
      const url = new URL(request.url);
      if (url.pathname === '/metrics' || url.pathname === '/healthz' || url.pathname === '/readyz') return;
      logger.info(
        {
          requestId: record.id,
          method: request.method,
          path: url.pathname,
          operation: record.operation ?? null,
          status: response.status,
          errors: record.errors ?? 0,
          durationMs: Math.round((performance.now() - record.startedAt) * 10) / 10,
        },
        'request',
      );
    },
  };
}

/** The code the client will see (errors are masked after this hook: a source failure still carries its SourceError here). */
function errorCode(e: GraphQLError): string {
  if (typeof e.extensions?.code === 'string') return e.extensions.code;
  return e.originalError instanceof SourceError ? e.originalError.code : 'INTERNAL_SERVER_ERROR';
}
