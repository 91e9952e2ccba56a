import { createServer, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { WebhookReceiver } from '../webhooks/receiver.js';
import type { AdmissionQueue } from './admission-queue.js';
import type { ClientConnections } from './client-connections.js';
import { StalledStreams } from './stalled-streams.js';
import { refuseOverloaded, type LoadShedder, type ShedReason } from './load-shedding.js';
import {
  bodyForYoga,
  parsedJsonBody,
  queryJsonTooDeep,
  readRequestBody,
  refuse as refuseRequest,
  refuseBeforeContinue,
  requestJsonTooDeep,
  TOO_DEEP,
  type RequestBodyLimits,
} from './request-body.js';

/** What handles a request once its body is read: graphql-yoga's node handler. */
export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => unknown;

export interface HttpLayerOptions extends RequestBodyLimits {
  /** Vendors' events, `POST /webhooks/<source>`, taken before yoga with their raw body. */
  webhooks?: WebhookReceiver;
  /** Repeated entity queries answered from the response cache before yoga (cached-responses.ts), given the body's JSON (undefined when it is none); resolves to whether it answered. */
  cachedResponses?: (req: IncomingMessage, res: ServerResponse, json: unknown) => Promise<boolean>;
  /** Refuses GraphQL requests past capacity (503) before their body is read; `onShed` counts each refusal. */
  shedder?: LoadShedder;
  onShed?: (reason: ShedReason) => void;
  /** Where GraphQL requests that will run operations wait for room (admission-queue.ts); response-cache hits never wait. */
  admission?: AdmissionQueue;
  /** The CORS headers for a request's origin (the refusal carries them, so a browser sees the 503); null for an origin not allowed. */
  cors?: (origin: string | undefined) => OutgoingHttpHeaders | null;
  /** Where a failure of the hit path is logged (the request then goes to yoga). */
  onError?: (error: unknown) => void;
  /** An event stream whose client took none of the data waiting for it this long is cut (stalled-streams.ts); `onStalledStreamCut` is told. */
  stalledStreamCutMs?: number;
  onStalledStreamCut?: (stalledMs: number) => void;
  /** `server.headersTimeout`: the request line and headers must arrive within this. @default min(requestTimeoutMs, 60 s) */
  headersTimeoutMs?: number;
  /** `server.keepAliveTimeout`: an idle connection is kept this long for its next request. @default Node's (5 s) */
  keepAliveMs?: number;
  /** Keeps the client connections under their cap, closing the idle ones first (client-connections.ts). */
  connections?: ClientConnections;
}

/** After the hit path: the request goes on to `next` unless it was answered from the response cache. */
function goOnUnlessAnswered(next: RequestHandler, req: IncomingMessage, res: ServerResponse, answered: boolean): void {
  if (!answered) void next(req, res);
}

/** The hit path failed: logged, and the request goes on to `next` if nothing was sent yet. */
function goOnAfterFailure(onError: ((error: unknown) => void) | undefined, next: RequestHandler, req: IncomingMessage, res: ServerResponse, error: unknown): void {
  onError?.(error);
  if (!res.headersSent) void next(req, res);
}

/**
 * The HTTP layer: what runs before graphql-yoga sees a request, in one place.
 * A POST body is read here (bounded by `maxBodyBytes`, timed by
 * `requestTimeoutMs`, checked as UTF-8; see request-body.ts), parsed once
 * when it is JSON, and handed to yoga as `req.body`; `Expect: 100-continue`
 * is answered here, a 413 before the body is sent when the declared length is
 * over the limit. Everything else goes straight to `handler`.
 */
export function createHttpServer(handler: RequestHandler, options: HttpLayerOptions): Server {
  const limits: RequestBodyLimits = { maxBodyBytes: options.maxBodyBytes, requestTimeoutMs: options.requestTimeoutMs };
  const { shedder, admission, connections } = options;
  const stalled = options.stalledStreamCutMs ? new StalledStreams(options.stalledStreamCutMs, options.onStalledStreamCut ?? (() => undefined)) : null;
  const refuse = (req: IncomingMessage, res: ServerResponse, reason: ShedReason) => {
    options.onShed?.(reason);
    refuseOverloaded(res, reason, options.cors?.(req.headers.origin) ?? {});
  };
  /**
   * Hands an operation to yoga, through the admission queue when there is one. What runs later is bound, not a
   * closure: a closure made per request has its optimized code dropped at every full collection (bench/RESULTS.md, session 36).
   */
  const run = (req: IncomingMessage, res: ServerResponse) => {
    if (!admission) return void handler(req, res);
    admission.admit(res, handler.bind(null, req, res), refuse.bind(null, req, res, 'queue_wait'));
  };
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    connections?.requestStarted(req);
    const operation = req.url?.startsWith('/graphql') === true;
    // An event stream (an SSE subscription) lasts as long as its client stays: it is not a request in progress
    // (subscriptions have their own bound, SUBSCRIPTIONS_PER_CALLER), and it does not wait in line.
    const stream = operation && req.headers.accept?.includes('text/event-stream') === true;
    if (shedder && operation) {
      const reason = shedder.refuses();
      if (reason !== null) return refuse(req, res, reason);
      if (!stream) shedder.track(res);
    }
    if (stream) stalled?.watch(res);
    // A preflight or a stream goes straight on; a query or mutation (POST, or GET) may wait in line.
    const next = operation && !stream && (req.method === 'POST' || req.method === 'GET') ? run : handler;
    if (operation && req.method === 'GET' && queryJsonTooDeep(req.url!)) return refuseRequest(res, 400, TOO_DEEP);
    if (req.method !== 'POST') return void next(req, res);
    void readRequestBody(req, res, limits).then(withBody.bind(null, next, req, res));
  };
  /** A POST's body is read (null: refused, or its client gone). */
  const withBody = (next: RequestHandler, req: IncomingMessage, res: ServerResponse, body: Buffer | null) => {
    if (body === null) return;
    if (options.webhooks && req.url?.startsWith('/webhooks/')) return options.webhooks.handle(req, res, body);
    // Parsed once, for the hit path and for yoga.
    const json = parsedJsonBody(req, body);
    if (requestJsonTooDeep(json)) return refuseRequest(res, 400, TOO_DEEP);
    (req as IncomingMessage & { body?: unknown }).body = bodyForYoga(body, json);
    if (!options.cachedResponses) return void next(req, res);
    options.cachedResponses(req, res, json).then(goOnUnlessAnswered.bind(null, next, req, res), goOnAfterFailure.bind(null, options.onError, next, req, res));
  };
  const server = createServer(handle);
  connections?.watch(server);
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    if (refuseBeforeContinue(req, res, limits.maxBodyBytes)) return;
    res.writeContinue();
    handle(req, res);
  });
  // Node's own checks stay as a backstop (they run every 30 s and answer without a body).
  server.requestTimeout = options.requestTimeoutMs;
  server.headersTimeout = options.headersTimeoutMs ?? Math.min(options.requestTimeoutMs, 60_000);
  if (options.keepAliveMs !== undefined) server.keepAliveTimeout = options.keepAliveMs;
  return server;
}
