import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { EventEmitter } from 'cockatiel';
import type { Dispatcher } from 'undici';
import type { z } from 'zod';
import { SourceError, type SourceName } from '../errors.js';
import type { Logger } from '../logger.js';
import { Deadline } from '../resilience/deadline.js';
import type { SourcePolicy } from '../resilience/source-policy.js';
import type { UpstreamAuth } from './auth.js';
import { DriftRecorder } from './drift.js';
import { headerValue } from './header-value.js';
import { forgivenSoFar } from './normalize.js';
import { quickRead, UNREAD } from './quick-read.js';
import { remainingWindow, retryAfterMs } from './rate-limit-headers.js';
import { errorForStatus, exchange, type UpstreamExchange } from './upstream-http.js';
import type { TooLargeStatus } from './paging.js';

const tracer = trace.getTracer('rest-graphql-gateway');

/** The pause after a 429 that names no moment to come back. */
const DEFAULT_429_PAUSE_MS = 1000;

export interface HttpSourceOptions {
  name: SourceName;
  /** The upstream's base URL; a path in it (e.g. https://host/tenant) prefixes every route. */
  baseUrl: string;
  /** The keep-alive pool for the base URL's origin. */
  dispatcher: Dispatcher;
  auth: UpstreamAuth;
  timeoutMs: number;
  /** Retry, breaker, rate limit and bulkhead for this source. */
  policy: SourcePolicy;
  /** The deadline of a call made outside a GraphQL request (no deadline given). */
  defaultDeadlineMs: number;
  logger: Logger;
  /** What a compressed answer may decode to (`<SOURCE>_MAX_RESPONSE_BYTES`; the pool bounds what arrives). */
  maxResponseBytes?: number;
}

/** One HTTP exchange's outcome, for observers (health, metrics, logs). */
export interface AttemptEvent {
  source: SourceName;
  route: string;
  attempt: number;
  durationMs: number;
  status?: number;
  error?: SourceError;
  /** Connections the vendor had closed while idle that this attempt met, each followed by the request sent again at once (closed-idle-connections.ts). */
  closedIdle?: number;
}

export interface SourceRequest<T> {
  /** Route template for logs and metrics: "GET /api/v2/users/:id". Never a raw path with ids. */
  route: string;
  method: Dispatcher.HttpMethod;
  /** Path under the base URL, encoded, with its query. */
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
  /** Validates and normalizes the body; unknown fields are stripped. */
  schema: z.ZodType<T>;
  /**
   * Safe to repeat. By default GET and HEAD are, and a write only with an
   * Idempotency-Key header; a read sent as POST (a query endpoint) says so here.
   */
  idempotent?: boolean;
  /** The request's deadline; a fresh one of `defaultDeadlineMs` when absent. */
  deadline?: Deadline | undefined;
  /** Keys a bulk call asks for (ids in one lookup), for its trace span. */
  batchSize?: number;
}

export interface SourceResponse<T> {
  body: T;
  headers: UpstreamExchange['headers'];
  /** The 2xx it came with. */
  status: number;
}

/** A path segment for an id: everything escaped, including "." so "../" can never climb. */
export function pathSegment(id: string): string {
  return encodeURIComponent(id).replaceAll('.', '%2E');
}

/** An answer in the API's own terms: JSON by its content type, or by its body when it names none. */
function isJsonAnswer(res: UpstreamExchange): boolean {
  const type = headerValue(res.headers, 'content-type');
  if (type !== undefined) return /^(application|text)\/([\w.+-]*\+)?json\b/i.test(type.trim());
  const text = res.text.trimStart();
  return text.startsWith('{') || text.startsWith('[');
}

/**
 * The one place a source talks HTTP: auth headers, the per-attempt timeout,
 * the 401 → new credential → one retry dance, status → typed SourceError,
 * validation of the body, all run through the source's resilience policy. Subclasses are their routes and their normalizers.
 */
export abstract class HttpSource {
  readonly name: SourceName;
  readonly policy: SourcePolicy;
  private readonly attemptEmitter = new EventEmitter<AttemptEvent>();
  /** Every HTTP exchange, retries included; observability subscribes. */
  readonly onAttempt = this.attemptEmitter.addListener;
  protected readonly logger: Logger;
  /** What this vendor sends that its schemas do not read (unknown, missing and retyped fields). */
  readonly drift: DriftRecorder;
  private readonly basePath: string;
  /** Whether the line saying this vendor closes idle connections was logged (once a process: it is a setting to look at, not a failure). */
  private closedIdleSaid = false;

  constructor(protected readonly options: HttpSourceOptions) {
    this.name = options.name;
    this.drift = new DriftRecorder(options.name);
    this.policy = options.policy;
    this.logger = options.logger;
    this.basePath = new URL(options.baseUrl).pathname.replace(/\/+$/, '');
  }

  /** The validated body, or throws a SourceError (404 included). */
  protected fetch<T>(request: SourceRequest<T>): Promise<SourceResponse<T>> {
    // Without notFoundIsNull a 404 throws, so the answer is never null; no async wrapper to say so (see SourcePolicy.execute).
    return this.send(request, false) as Promise<SourceResponse<T>>;
  }

  /** Like fetch, but a 404 is null: the entity does not exist. */
  protected fetchOrNull<T>(request: SourceRequest<T>): Promise<SourceResponse<T> | null> {
    return this.send(request, true);
  }

  private async send<T>(request: SourceRequest<T>, notFoundIsNull: boolean): Promise<SourceResponse<T> | null> {
    const body = request.body === undefined ? undefined : JSON.stringify(request.body);
    const own = request.deadline === undefined;
    const deadline = request.deadline ?? Deadline.after(this.options.defaultDeadlineMs);
    // Reads are safe to repeat; a write only when the upstream can recognise the repeat.
    const idempotent = request.idempotent ?? (request.method === 'GET' || request.method === 'HEAD' || request.headers?.['idempotency-key'] !== undefined);
    let attempt = 0;
    // One span per call, retries included; its context is active for the attempts, so each sends it on as `traceparent`.
    return tracer.startActiveSpan(
      `${this.name} ${request.route}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'gateway.source': this.name,
          'gateway.endpoint': request.route,
          'http.request.method': request.method,
          'gateway.breaker_state': this.policy.state,
          ...(request.batchSize === undefined ? {} : { 'gateway.batch_size': request.batchSize }),
        },
      },
      async (span) => {
        try {
          const result = await this.policy.execute(deadline, idempotent, (signal) => this.attempt(request, body, signal, deadline, ++attempt, notFoundIsNull, idempotent));
          if (result === null) span.setAttribute('gateway.not_found', true);
          return result;
        } catch (error) {
          const code = error instanceof SourceError ? error.code : 'INTERNAL_SERVER_ERROR';
          span.setAttribute('gateway.error_code', code);
          if (error instanceof SourceError && error.status !== undefined) span.setAttribute('http.response.status_code', error.status);
          span.setStatus({ code: SpanStatusCode.ERROR, message: code });
          throw error;
        } finally {
          span.setAttribute('gateway.attempts', attempt);
          span.end();
          if (own) deadline.dispose();
        }
      },
    );
  }

  /**
   * One attempt, inside the policy: auth, the exchange (and on a 401 one more
   * with a fresh credential), status → SourceError, and validation of the body,
   * so a malformed answer counts against the source like any other failure.
   */
  private async attempt<T>(
    request: SourceRequest<T>,
    body: string | undefined,
    signal: AbortSignal,
    deadline: Deadline,
    attempt: number,
    notFoundIsNull: boolean,
    replayable: boolean,
  ): Promise<SourceResponse<T> | null> {
    for (let tries = 1; ; tries++) {
      const pending = this.options.auth.headers();
      const auth = pending instanceof Promise ? await this.untilAborted(pending, signal) : pending;
      const headers: Record<string, string> = { accept: 'application/json', ...auth, ...request.headers };
      // W3C traceparent (and tracestate) of this call's span, when tracing is on; nothing otherwise.
      propagation.inject(context.active(), headers);
      if (body !== undefined) headers['content-type'] = 'application/json';
      const startedAt = performance.now();
      let status: number | undefined;
      let error: SourceError | undefined;
      let closedIdle = 0;
      try {
        const res = await exchange({
          dispatcher: this.options.dispatcher,
          source: this.name,
          method: request.method,
          path: this.basePath + request.path,
          headers,
          body,
          maxBodyBytes: this.options.maxResponseBytes,
          // Never longer than the request has left: its timeout then says which attempt ran out.
          timeoutMs: Math.max(1, Math.min(this.options.timeoutMs, deadline.remainingMs())),
          signal,
          replayable,
          onClosedIdle: () => closedIdle++,
        });
        status = res.status;
        this.observeRateLimit(res, startedAt);
        if (res.status === 401) {
          // Told of every 401, the retry's too: a replacement refused as well is what makes it stop fetching tokens.
          if (this.options.auth.rejected(auth) && tries === 1) continue;
        } else {
          this.options.auth.accepted?.(auth);
        }
        if (res.status === 404 && notFoundIsNull) {
          if (isJsonAnswer(res)) return null;
          // A proxy's or load balancer's page, not the API's "no such entity": a wrong base URL or a moved route would
          // otherwise read as every user having nothing.
          throw new SourceError({
            code: 'SOURCE_BAD_RESPONSE',
            source: this.name,
            retryable: false,
            status: 404,
            detail: `${request.route} answered 404 that is not the API's (${headerValue(res.headers, 'content-type') ?? 'no content type'}): is ${this.name.toUpperCase()}_URL right?`,
          });
        }
        if (res.status < 200 || res.status >= 300) throw errorForStatus(this.name, res, request.route, request.headers?.['idempotency-key'] !== undefined);
        return this.validate(request, res);
      } catch (e) {
        error = e as SourceError;
        throw e;
      } finally {
        this.attemptEmitter.emit({
          source: this.name,
          route: request.route,
          attempt,
          durationMs: performance.now() - startedAt,
          ...(status === undefined ? {} : { status }),
          ...(error === undefined ? {} : { error }),
          ...(closedIdle === 0 ? {} : { closedIdle }),
        });
        if (closedIdle > 0 && !this.closedIdleSaid) this.sayClosedIdle();
      }
    }
  }

  private sayClosedIdle(): void {
    this.closedIdleSaid = true;
    const setting = `${this.name.toUpperCase()}_KEEP_ALIVE_MS`;
    this.logger.info(
      { source: this.name },
      `${this.name} closed an idle connection as a call was sent on it; the call was sent again on another at once. Its idle timeout is shorter than ${setting} and not said in a Keep-Alive header: set ${setting} under it to save the round trip. Counted in gateway_upstream_closed_idle_connections_total; this line once a process`,
    );
  }

  /**
   * A credential being fetched, waited for only while the attempt may go on:
   * the fetch is shared by every waiting call and bounded by its own timeout,
   * so one caller's deadline ends its own wait, not the fetch.
   */
  private untilAborted<V>(pending: Promise<V>, signal: AbortSignal): Promise<V> {
    const cancelled = () =>
      new SourceError({ code: 'SOURCE_TIMEOUT', source: this.name, retryable: true, local: true, detail: 'cancelled: the request deadline passed while a token was fetched' });
    if (signal.aborted) return Promise.reject(cancelled());
    return new Promise<V>((resolve, reject) => {
      const onAbort = () => reject(cancelled());
      signal.addEventListener('abort', onAbort, { once: true });
      pending.then(
        (value) => {
          signal.removeEventListener('abort', onAbort);
          resolve(value);
        },
        (error: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
  }

  /**
   * What an answer says of the vendor's rate limit, for the limiter: a 429
   * pauses the whole source until the moment it names (a second when it
   * names none) and lowers the rate; a success saying no calls remain before
   * the reset pauses until then, before the vendor has to refuse, unless
   * such a header has proved wrong (see SourceRateLimiter.answered).
   */
  private observeRateLimit(res: UpstreamExchange, sentAt: number): void {
    if (res.status === 429) return this.policy.limiter.throttled(retryAfterMs(res.headers) ?? DEFAULT_429_PAUSE_MS);
    const wrong = this.policy.limiter.answered(sentAt);
    if (wrong !== undefined) {
      // The limiter times on the monotonic clock; the line says wall-clock times.
      const wall = (monotonic: number) => new Date(Date.now() - (performance.now() - monotonic)).toISOString();
      const until = wall(wrong.until);
      this.logger.warn(
        { source: this.name, saidAt: wall(wrong.saidAt), until, answeredCallSentAt: wall(sentAt) },
        `${this.name} said no calls remained until ${until}, then answered one sent before: its rate-limit headers' "none remaining" is not believed until it refuses a call (429)`,
      );
    }
    const window = remainingWindow(res.headers);
    if (window !== undefined && window.remaining === 0 && window.resetInMs > 0) this.policy.limiter.exhausted(window.resetInMs);
  }

  private validate<T>(request: SourceRequest<T>, res: UpstreamExchange): SourceResponse<T> {
    let json: unknown;
    try {
      json = JSON.parse(res.text);
    } catch {
      return this.badResponse(request, 'body is not JSON', res.status);
    }
    const forgivenBefore = forgivenSoFar();
    const quick = quickRead(request.schema, json);
    if (quick !== UNREAD) {
      this.drift.inspect(request.route, json, request.schema, forgivenSoFar() !== forgivenBefore);
      return { body: quick as T, headers: res.headers, status: res.status };
    }
    const parsed = request.schema.safeParse(json);
    this.drift.inspect(request.route, json, request.schema, !parsed.success || forgivenSoFar() !== forgivenBefore);
    if (!parsed.success) {
      const where = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
      return this.badResponse(request, `unexpected shape: ${where.join('; ')}`, res.status);
    }
    return { body: parsed.data, headers: res.headers, status: res.status };
  }

  /** `status`: the 2xx the body came with (see acceptedButUnread). */
  private badResponse(request: SourceRequest<unknown>, detail: string, status: number): never {
    // Paths and messages only: the body itself may hold personal data. The request's own
    // log line carries the detail at warn; this one is for following a single call.
    this.logger.debug({ source: this.name, route: request.route, detail }, 'upstream response failed validation');
    throw new SourceError({ code: 'SOURCE_BAD_RESPONSE', source: this.name, retryable: false, status, detail: `${request.route}: ${detail}` });
  }

  /**
   * An answer about another user than the one its path named (a cache in
   * front of the vendor keyed without the path, or the vendor's bug): never
   * shown to the caller nor cached, and not retried.
   */
  protected answeredForAnotherUser(route: string, status?: number): SourceError {
    return this.unusableAnswer(route, 'the answer is about another user than the one asked', status);
  }

  /**
   * A 2xx answer this source cannot use as asked (`why`: for the log line only), not retried: the vendor would say the same.
   * `status`, for a write's answer: the vendor took the write (see acceptedButUnread).
   */
  protected unusableAnswer(route: string, why: string, status?: number): SourceError {
    return new SourceError({ code: 'SOURCE_BAD_RESPONSE', source: this.name, retryable: false, status, detail: `${route}: ${why}` });
  }

  /** A bulk route's calls now carry at most `max` ids: the vendor (or a proxy) refused a longer URL (414) or body (413); see ChunkSize. */
  protected chunkShrunk(route: string, max: number, status: TooLargeStatus): void {
    const what = status === 414 ? 'a URL as too long' : 'a body as too large';
    this.logger.info({ source: this.name, route, maxIds: max, status }, `${this.name} refused ${what} (${status}): ${route} now carries at most ${max} ids a call`);
  }

  /** A list's pages are planned by the vendor's own page size (`size`: it ignores per_page), or by per_page again (undefined). */
  protected pageSizeChanged(route: string, asked: number, size: number | undefined): void {
    this.logger.warn(
      { source: this.name, route, asked, pageSize: size ?? null },
      size === undefined
        ? `${this.name} pages by per_page again: ${route} windows are planned by it`
        : `${this.name} ignores per_page (asked ${asked}, a page held ${size}): ${route} windows are planned by its page size`,
    );
  }

  /** The error for one entity of an answer that could not be read (its other entities could). */
  protected unreadableEntity(route: string, what: string, problem: string | undefined): SourceError {
    return this.unusableAnswer(route, `${what} could not be read${problem ? ` (${problem})` : ''}`);
  }
}
