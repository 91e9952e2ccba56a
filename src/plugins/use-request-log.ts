import { randomUUID } from 'node:crypto';
import { getOperationAST, type ExecutionResult, type GraphQLError } from 'graphql';
import { SourceError } from '../errors.js';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import { REQUEST_ID } from '../http/cached-responses.js';
import { errorCode, partErrors, type IncrementalPart } from './graphql-results.js';
import type { AfterExecution } from './use-after-execution.js';
import type { StaleField } from '../cache/stale-report.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { SourceFailure, SourceFailureLog } from '../observability/source-failure-log.js';

interface RequestRecord {
  id: string;
  startedAt: number;
  method: string;
  path: string;
  operation?: string | undefined;
  errors?: number;
  failures?: SourceFailure[];
  /** The response's status, once it went out. */
  status?: number;
  /** @defer/@stream: parts follow the response's head; the line is written after the last. */
  streaming?: 'open' | 'ended';
}

/** An operation being executed: when it started, its label in the metrics, its type, and its HTTP request's record. */
interface Execution {
  startedAt: number;
  name: string;
  type: string;
  /** None for an operation without an HTTP request of its own (GraphQL over WebSocket): counted, not logged. */
  record: RequestRecord | undefined;
}

/** What the log reads of an operation's context (yoga's request; the stale report, where the server adds one). */
type ExecutionContext = { request: Request; stale?: { fields: StaleField[] } };

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

/**
 * `plugin` reads the request (its id, its line); `execution` times and counts its operations, and goes in the server's
 * after-execution plugin (use-after-execution.ts) before the concerns that rewrite a result (masking, the stale report),
 * so it reads the errors as they were raised.
 */
export function createRequestLog({ logger, metrics, failures }: RequestLogOptions): { plugin: Plugin; execution: AfterExecution } {
  const requests = new WeakMap<Request, RequestRecord>();
  /** By the operation's execution arguments (one per operation: a batched request has several). */
  const executions = new WeakMap<object, Execution>();

  /** The request's line and its sources' warn lines, once the response went out and (streamed) its last part too. */
  const finish = (record: RequestRecord) => {
    if (record.status === undefined || record.streaming === 'open') return;
    for (const failure of record.failures ?? []) failures.record(record.id, record.operation ?? null, failure);
    if (!logger.isLevelEnabled('info')) return;
    if (record.path === '/metrics' || record.path === '/healthz' || record.path === '/readyz') return;
    logger.info(
      {
        requestId: record.id,
        method: record.method,
        path: record.path,
        operation: record.operation ?? null,
        status: record.status,
        errors: record.errors ?? 0,
        durationMs: Math.round((performance.now() - record.startedAt) * 10) / 10,
        ...(record.streaming ? { incremental: true } : {}),
      },
      'request',
    );
  };

  /** The operation's metrics, and what its request's line and warn lines will say of it. */
  const done = ({ startedAt, name, type, record }: Execution, context: ExecutionContext, errors: readonly GraphQLError[]) => {
    metrics.countOperation(name, type, (performance.now() - startedAt) / 1000, errors.length > 0);
    for (const e of errors) metrics.operationErrors.labels(name, errorCode(e)).inc();
    if (!record) return;
    record.errors = errors.length;
    if (errors.length || context.stale?.fields.length) record.failures = sourceFailures(errors, context.stale?.fields ?? []);
  };

  const execution: AfterExecution = {
    onExecute(args) {
      const operation = getOperationAST(args.document, args.operationName);
      const record = requests.get((args.contextValue as ExecutionContext).request);
      if (record && operation?.name) record.operation = operation.name.value;
      const name = metrics.operationLabel(operation?.name?.value ?? args.operationName);
      executions.set(args, { startedAt: performance.now(), name, type: operation?.operation ?? 'unknown', record });
    },
    onExecuteDone({ args, result }) {
      const started = executions.get(args)!;
      const context = args.contextValue as ExecutionContext;
      if (!isAsyncIterable(result)) {
        done(started, context, (result as ExecutionResult).errors ?? []);
        return undefined;
      }
      // @defer/@stream: the later parts' errors and stale fields count too, and the duration runs to the last part.
      const errors: GraphQLError[] = [];
      const { record } = started;
      if (record) record.streaming = 'open';
      return {
        onNext: ({ result: part }) => void errors.push(...partErrors(part as IncrementalPart)),
        onEnd: () => {
          done(started, context, errors);
          if (!record) return;
          record.streaming = 'ended';
          finish(record);
        },
      };
    },
  };

  const plugin: Plugin = {
    onRequest({ request, url }) {
      const incoming = request.headers.get('x-request-id');
      requests.set(request, {
        id: incoming && REQUEST_ID.test(incoming) ? incoming : randomUUID(),
        startedAt: performance.now(),
        method: request.method,
        path: url.pathname,
      });
    },
    onParams({ request, params }) {
      const record = requests.get(request);
      if (record && typeof params.operationName === 'string') record.operation = params.operationName;
    },
    onResponse({ request, response }) {
      const record = requests.get(request);
      if (!record) return;
      response.headers.set('x-request-id', record.id);
      record.status = response.status;
      finish(record);
    },
  };
  return { plugin, execution };
}
