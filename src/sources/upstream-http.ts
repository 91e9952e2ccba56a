import { errors as undiciErrors, type Dispatcher } from 'undici';
import { SourceError, type SourceName } from '../errors.js';
import { retryAfterMs } from './rate-limit-headers.js';

/**
 * One HTTP exchange with an upstream and the mapping of its failures to typed
 * SourceErrors. No retries here (that is policy); no auth (that is the caller's).
 */
export interface UpstreamExchange {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

export interface UpstreamCall {
  dispatcher: Dispatcher;
  source: SourceName;
  method: Dispatcher.HttpMethod;
  /** Path and query, already encoded. */
  path: string;
  headers: Record<string, string>;
  body?: string | undefined;
  /**
   * Per-attempt timeout: the response's headers must arrive within it, and its
   * body may not stall for longer (undici's own timers; connecting is bounded
   * by the pool's connect timeout, set to the same).
   */
  timeoutMs: number;
  /** The caller's cancellation: the request's deadline. */
  signal?: AbortSignal | undefined;
}

export async function exchange(call: UpstreamCall): Promise<UpstreamExchange> {
  try {
    const res = await call.dispatcher.request({
      method: call.method,
      path: call.path,
      headers: call.headers,
      body: call.body,
      headersTimeout: call.timeoutMs,
      bodyTimeout: call.timeoutMs,
      signal: call.signal ?? null,
    });
    const text = await res.body.text();
    return { status: res.statusCode, headers: res.headers, text };
  } catch (error) {
    if (error instanceof SourceError) throw error;
    if (call.signal?.aborted) {
      throw new SourceError({ code: 'SOURCE_TIMEOUT', source: call.source, retryable: true, local: true, detail: 'cancelled: the request deadline passed', cause: error });
    }
    if (error instanceof undiciErrors.ResponseExceededMaxSizeError) {
      // The same request would get the same answer: not retried.
      throw new SourceError({
        code: 'SOURCE_BAD_RESPONSE',
        source: call.source,
        retryable: false,
        detail: `the answer is larger than ${call.source.toUpperCase()}_MAX_RESPONSE_BYTES allows`,
        cause: error,
      });
    }
    if (error instanceof undiciErrors.HeadersTimeoutError || error instanceof undiciErrors.BodyTimeoutError || error instanceof undiciErrors.ConnectTimeoutError) {
      throw new SourceError({ code: 'SOURCE_TIMEOUT', source: call.source, retryable: true, detail: `no answer within ${call.timeoutMs} ms`, cause: error });
    }
    const code = (error as { code?: unknown }).code;
    throw new SourceError({
      code: 'SOURCE_UNAVAILABLE',
      source: call.source,
      retryable: true,
      detail: `network error${typeof code === 'string' ? ` ${code}` : ''}`,
      cause: error,
    });
  }
}

/** The error for a non-2xx answer. 404s are the caller's to interpret before this. */
export function errorForStatus(source: SourceName, res: UpstreamExchange, route: string): SourceError {
  const { status } = res;
  const detail = `${route} answered ${status}`;
  if (status === 429) {
    return new SourceError({ code: 'SOURCE_RATE_LIMITED', source, retryable: true, status, detail, retryAfterMs: retryAfterMs(res.headers) });
  }
  if (status === 401 || status === 403) return new SourceError({ code: 'SOURCE_AUTH_FAILED', source, retryable: false, status, detail });
  if (status === 408) return new SourceError({ code: 'SOURCE_TIMEOUT', source, retryable: true, status, detail });
  if (status >= 500) {
    return new SourceError({ code: 'SOURCE_UNAVAILABLE', source, retryable: true, status, detail, retryAfterMs: retryAfterMs(res.headers) });
  }
  // Any other 4xx: the upstream refused what we sent; retrying will not help.
  return new SourceError({ code: 'SOURCE_BAD_RESPONSE', source, retryable: false, status, detail });
}
