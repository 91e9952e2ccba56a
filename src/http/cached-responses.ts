import { randomUUID } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { propagation, ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import type { CachedResponse, ResponseCache, ResponseKeyParts } from '../cache/response-cache.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Viewer } from '../viewer.js';
import { compressBody, negotiateEncoding } from './content-encoding.js';
import { callerLimitMessage } from '../errors.js';

/** A caller's request id is echoed when it looks like one (so a trace spans services); else a new UUID. */
export const REQUEST_ID = /^[\w.:-]{1,128}$/;
const BEARER = /^Bearer\s+(\S+)\s*$/i;

export interface CachedResponsesOptions {
  responses: ResponseCache;
  /** The token check useJwtAuth makes (the same cached verifier). */
  verify: (token: string) => Promise<Viewer>;
  /** The per-caller budget useCallerRateLimit spends; 0 when the caller may go on, else seconds to wait. */
  retryAfterSeconds: (subject: string) => Promise<number>;
  metrics: Metrics;
  logger: Logger;
  /** The CORS headers for a request's origin (corsHeaders); null for an origin not allowed, which is left to yoga. */
  cors: (origin: string | undefined) => OutgoingHttpHeaders | null;
  /** Bodies at least this long are compressed by Accept-Encoding; null: compression is off. */
  compressionThresholdBytes: number | null;
  /** PERSISTED_OPERATIONS_REQUIRED: a request that sends document text is yoga's to refuse. */
  persistedOnly: boolean;
  /** APQ or persisted operations on: a request may name its document by hash alone (else yoga refuses it). */
  hashOnly: boolean;
  /** Whether a hit gets its own span (tracing on). */
  tracing: boolean;
}

/** A request the hit path looked up and missed, with the key it computed (read by useResponseCache). */
export type KeyedRequest = IncomingMessage & { responseCacheKey?: string };

/** How a hit is written, by the client's Accept (what yoga would answer to the same one). */
type ResponseType = 'application/json; charset=utf-8' | 'application/graphql-response+json; charset=utf-8';

/**
 * Answers a repeated entity query from the ResponseCache in the HTTP layer,
 * before yoga: no parse, validation or execution, no Request/Response objects
 * — the body's JSON, the token (the same cached check as useJwtAuth), the
 * key, the stored bytes. It keeps what a yoga answer has: the caller's rate
 * limit (429 with Retry-After), the operation and cache metrics, the request
 * id and log line, CORS headers and compression (each compressed form made
 * once per kept response). Anything it is not sure of — another content type,
 * batching, a bad or missing token, an origin not allowed, an Accept yoga
 * would answer differently, a miss — goes to yoga unchanged, which answers
 * (and keeps) it as before.
 *
 * Resolves to true when it answered the request.
 */
export function createCachedResponses(options: CachedResponsesOptions): (req: IncomingMessage, res: ServerResponse, json: unknown) => Promise<boolean> {
  const { responses, metrics, logger } = options;
  const { cors } = options;

  return async (req, res, json) => {
    const startedAt = performance.now();
    if (req.url !== '/graphql' || json === undefined) return false;
    const type = responseType(req.headers.accept);
    const corsFields = cors(req.headers.origin);
    const token = BEARER.exec(req.headers.authorization ?? '')?.[1];
    if (type === null || corsFields === null || token === undefined) return false;
    const parts = requestParams(json);
    if (parts === null || (options.persistedOnly && parts.query !== undefined) || (!options.hashOnly && parts.query === undefined)) return false;
    let viewer: Viewer;
    try {
      viewer = await options.verify(token);
    } catch {
      return false; // yoga answers 401 with the usual message
    }
    const key = responses.key(parts, viewer);
    const cached = key === null ? undefined : responses.lookup(key);
    if (cached === undefined) {
      // Yoga's response-cache plugin keys the same request the same way: it takes this one rather than hash it again.
      if (key !== null) (req as KeyedRequest).responseCacheKey = key;
      return false;
    }

    const incoming = req.headers['x-request-id'];
    const requestId = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    const retryAfter = await options.retryAfterSeconds(viewer.userId);
    if (retryAfter > 0) {
      metrics.callerRejections.inc();
      const refusal = Buffer.from(
        JSON.stringify({
          errors: [{ message: callerLimitMessage(retryAfter), extensions: { code: 'RATE_LIMITED', retryAfterSeconds: retryAfter } }],
        }),
      );
      res.writeHead(429, { 'content-type': type, 'content-length': refusal.length, 'retry-after': String(retryAfter), ...corsFields, 'x-request-id': requestId });
      res.end(refusal);
      logRequest(logger, requestId, cached.operation, 429, startedAt);
      return true;
    }

    const span = options.tracing ? startSpan(req, cached.operation) : undefined;
    const encoding = options.compressionThresholdBytes !== null && cached.bytes.length >= options.compressionThresholdBytes ? acceptedEncoding(req) : null;
    const payload = encoding === null ? cached.bytes : await encoded(cached, encoding);
    const headers: OutgoingHttpHeaders = { 'content-type': type, 'content-length': payload.length, ...corsFields, 'x-request-id': requestId };
    if (options.compressionThresholdBytes !== null) headers.vary = 'Accept-Encoding';
    if (encoding !== null) headers['content-encoding'] = encoding;
    res.writeHead(200, headers);
    res.end(payload);
    span?.end();
    metrics.countOperation(cached.operation, 'query', (performance.now() - startedAt) / 1000, false);
    logRequest(logger, requestId, cached.operation, 200, startedAt);
    return true;
  };
}

/** The body's JSON as GraphQL-over-HTTP params, or null when it is not one plain request (yoga answers what it is). */
function requestParams(parsed: unknown): ResponseKeyParts | null {
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return null;
  const params = parsed as ResponseKeyParts;
  if (params.query !== undefined && typeof params.query !== 'string') return null;
  if (params.variables !== undefined && params.variables !== null && (typeof params.variables !== 'object' || Array.isArray(params.variables))) return null;
  return params;
}

/**
 * What yoga would answer a query with for this Accept: application/json when
 * none, any, or JSON comes first; graphql-response+json when that does; null
 * (leave it to yoga) for anything else (event streams, multipart, q-values).
 */
function responseType(accept: string | undefined): ResponseType | null {
  if (accept === undefined || accept === '' || accept === '*/*') return 'application/json; charset=utf-8';
  const first = accept.split(',', 1)[0]!.trim().toLowerCase();
  if (first.includes(';')) return null;
  if (first === 'application/json' || first === '*/*') return 'application/json; charset=utf-8';
  if (first === 'application/graphql-response+json') return 'application/graphql-response+json; charset=utf-8';
  return null;
}

function acceptedEncoding(req: IncomingMessage): 'br' | 'gzip' | null {
  const accept = req.headers['accept-encoding'];
  return accept ? negotiateEncoding(accept) : null;
}

/** The kept response compressed, made once and kept with it. */
async function encoded(cached: CachedResponse, encoding: 'br' | 'gzip'): Promise<Buffer> {
  return (cached.encoded[encoding] ??= await compressBody(cached.bytes, encoding));
}

function startSpan(req: IncomingMessage, operation: string) {
  const parent = propagation.extract(ROOT_CONTEXT, req.headers);
  return trace.getTracer('rest-graphql-gateway').startSpan(
    `query ${operation}`,
    {
      kind: SpanKind.SERVER,
      attributes: { 'http.request.method': 'POST', 'graphql.operation.type': 'query', 'graphql.operation.name': operation, 'gateway.response_cache': 'hit' },
    },
    parent,
  );
}

function logRequest(logger: Logger, requestId: string, operation: string, status: number, startedAt: number): void {
  if (!logger.isLevelEnabled('info')) return;
  logger.info(
    { requestId, method: 'POST', path: '/graphql', operation, status, errors: 0, durationMs: Math.round((performance.now() - startedAt) * 10) / 10, responseCache: 'hit' },
    'request',
  );
}
