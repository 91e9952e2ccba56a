import { GraphQLError } from 'graphql';

/** The names of the upstream sources; they appear in `extensions.source` and in metrics labels. */
export type SourceName = 'identity' | 'analytics' | 'notifications' | 'audit';

export type SourceErrorCode = 'SOURCE_TIMEOUT' | 'SOURCE_UNAVAILABLE' | 'SOURCE_RATE_LIMITED' | 'SOURCE_CIRCUIT_OPEN' | 'SOURCE_BAD_RESPONSE' | 'SOURCE_AUTH_FAILED';

export type ClientErrorCode = 'BAD_USER_INPUT' | 'UNAUTHENTICATED' | 'FORBIDDEN';

const sourceMessages: Record<SourceErrorCode, (source: SourceName) => string> = {
  SOURCE_TIMEOUT: (s) => `The ${s} service did not answer in time.`,
  SOURCE_UNAVAILABLE: (s) => `The ${s} service is unavailable.`,
  SOURCE_RATE_LIMITED: (s) => `The ${s} service is rate limited.`,
  SOURCE_CIRCUIT_OPEN: (s) => `The ${s} service is failing; calls to it are paused.`,
  SOURCE_BAD_RESPONSE: (s) => `The ${s} service answered with something this server cannot use.`,
  SOURCE_AUTH_FAILED: (s) => `This server's credentials for the ${s} service were rejected.`,
};

/**
 * A failed upstream call, as a value. Sources throw it; they never know GraphQL.
 * `detail` is for logs only (status, vendor error code, zod issue paths) and must
 * never hold a secret or an upstream body; it never reaches a client.
 */
export class SourceError extends Error {
  override readonly name = 'SourceError';
  readonly code: SourceErrorCode;
  readonly source: SourceName;
  readonly retryable: boolean;
  /** Seconds until the upstream will accept calls again, when it said so. */
  readonly retryAfterSeconds: number | undefined;
  /** The same in ms, as precise as the upstream said it (for our own waits; clients get the seconds). */
  readonly retryAfterMs: number | undefined;
  /** The upstream's HTTP status, when there was one. */
  readonly status: number | undefined;
  readonly detail: string | undefined;
  /** The vendor's own error code from its JSON error body (vendorErrorCode), when it named one. */
  readonly vendorCode: string | undefined;
  /**
   * Made by our own policies (rate limiter, breaker, bulkhead, deadline), not
   * by the upstream: never retried, never counted against the upstream's health.
   */
  readonly local: boolean;

  constructor(init: {
    code: SourceErrorCode;
    source: SourceName;
    retryable: boolean;
    retryAfterSeconds?: number | undefined;
    retryAfterMs?: number | undefined;
    status?: number | undefined;
    detail?: string | undefined;
    vendorCode?: string | undefined;
    local?: boolean;
    cause?: unknown;
  }) {
    super(sourceMessages[init.code](init.source), { cause: init.cause });
    this.code = init.code;
    this.source = init.source;
    this.retryable = init.retryable;
    this.retryAfterMs = init.retryAfterMs ?? (init.retryAfterSeconds === undefined ? undefined : init.retryAfterSeconds * 1000);
    this.retryAfterSeconds = init.retryAfterSeconds ?? (init.retryAfterMs === undefined ? undefined : Math.ceil(init.retryAfterMs / 1000));
    this.status = init.status;
    this.detail = init.detail;
    this.vendorCode = init.vendorCode;
    this.local = init.local ?? false;
  }
}

/**
 * The upstream answered 2xx and its body could not be used: it did not read,
 * was too large, or stopped or was cut off after the status line. For a write,
 * the vendor took it (only its answer is lost), so it is not a failed write.
 */
export function acceptedButUnread(e: unknown): e is SourceError {
  return e instanceof SourceError && e.status !== undefined && e.status >= 200 && e.status < 300;
}

/** A mistake in what the client sent; the message is shown to the client as is. */
export function badUserInput(message: string, argumentName?: string): GraphQLError {
  return new GraphQLError(message, {
    extensions: { code: 'BAD_USER_INPUT', ...(argumentName ? { argument: argumentName } : {}) },
  });
}

export function forbidden(what: string): GraphQLError {
  return new GraphQLError(`You may not read ${what} of another user.`, {
    extensions: { code: 'FORBIDDEN' },
  });
}

export function unauthenticated(reason: string): GraphQLError {
  return new GraphQLError(reason, {
    extensions: {
      code: 'UNAUTHENTICATED',
      http: { status: 401, headers: { 'WWW-Authenticate': 'Bearer' } },
    },
  });
}

/** The server's own store (Redis) did not answer for what only it holds (the delivery log): try again once it is back. */
export function storeUnavailable(what: string): GraphQLError {
  return new GraphQLError(`${what} is kept in Redis, which is not answering; try again once it is back.`, {
    extensions: { code: 'STORE_UNAVAILABLE', retryable: true },
  });
}

/** What a caller over its budget is told (yoga's RATE_LIMITED answer and the HTTP layer's hit path say the same). */
export function callerLimitMessage(retryAfterSeconds: number): string {
  return `Too many requests from this caller; retry after ${retryAfterSeconds} s.`;
}

/** The `extensions` a source failure carries in `errors[]` (DESIGN.md's contract). */
export function sourceErrorExtensions(error: SourceError): Record<string, unknown> {
  const extensions: Record<string, unknown> = {
    code: error.code,
    source: error.source,
    retryable: error.retryable,
  };
  // At least 1: a vendor's "Retry-After: 0" (or a reset already past) told a client to ask again at once, into the
  // same refusal.
  if (error.retryAfterSeconds !== undefined) extensions.retryAfterSeconds = Math.max(1, error.retryAfterSeconds);
  return extensions;
}

/**
 * Turns whatever a resolver threw into what the client sees. SourceErrors keep
 * their typed extensions; GraphQLErrors made on purpose (client mistakes) pass;
 * anything else is masked so no stack, path or upstream detail leaks.
 */
export function toClientError(error: unknown, maskedMessage: string): Error {
  if (error instanceof GraphQLError) {
    const original = error.originalError;
    if (original instanceof SourceError) {
      return new GraphQLError(original.message, {
        nodes: error.nodes,
        source: error.source,
        positions: error.positions,
        path: error.path,
        extensions: sourceErrorExtensions(original),
      });
    }
    // Validation errors and errors thrown on purpose (graphql-js copies the
    // thrown error's extensions onto the located one); they carry no internals.
    if (original instanceof GraphQLError || original === undefined || original === null) return error;
    return new GraphQLError(maskedMessage, {
      nodes: error.nodes,
      source: error.source,
      positions: error.positions,
      path: error.path,
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    });
  }
  return new GraphQLError(maskedMessage, { extensions: { code: 'INTERNAL_SERVER_ERROR' } });
}

/** What a rejection carried, as an Error (a batch fetch fails one key with it). */
export function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
