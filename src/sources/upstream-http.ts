import buffer from 'node:buffer';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { errors as undiciErrors, type Dispatcher } from 'undici';
import { SourceError, type SourceName } from '../errors.js';
import { metClosedIdleConnection } from './closed-idle-connections.js';
import { retryAfterMs } from './rate-limit-headers.js';
import { headerValue } from './header-value.js';

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
  /** The most a compressed answer may decode to (the pool bounds what arrives): `<SOURCE>_MAX_RESPONSE_BYTES`. */
  maxBodyBytes?: number | undefined;
  /**
   * The vendor may get this request twice (a read, a write it recognises by its Idempotency-Key): then one that met
   * a connection the vendor had closed while idle is sent again at once on another (closed-idle-connections.ts).
   */
  replayable?: boolean | undefined;
  /** Told each time the request met such a connection and was sent again. */
  onClosedIdle?: (() => void) | undefined;
}

/**
 * The most an answer's status line and headers may take. Node's 16 KiB (undici's default) is less than vendors behind
 * a CDN send now and then (a run of Set-Cookie, a long Content-Security-Policy); curl takes 100 KiB. Past it an answer
 * is SOURCE_BAD_RESPONSE, not retried.
 */
export const MAX_RESPONSE_HEADER_BYTES = 64 * 1024;

/**
 * A request met a closed idle connection this many times at most before its failure is the answer: each time takes
 * one pooled connection out, and after a lull several may have been closed at once.
 */
const MAX_CLOSED_IDLE_REPLAYS = 3;

export async function exchange(call: UpstreamCall): Promise<UpstreamExchange> {
  // Once a 2xx status line has come, a failure reading its body still carries it: for a write, the vendor took it (acceptedButUnread).
  let status: number | undefined;
  try {
    const res = await sent(call);
    const encoding = res.headers['content-encoding'];
    // Only a success's body is read for what it says: an error status is classified by itself, whatever its coding.
    const success = res.statusCode >= 200 && res.statusCode < 300;
    if (success) status = res.statusCode;
    const coded = success && encoding !== undefined && encoding !== 'identity';
    const charset = success ? foreignCharset(headerValue(res.headers, 'content-type')) : undefined;
    if (!coded && charset === undefined) return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
    let bytes: Buffer = Buffer.from(await res.body.arrayBuffer());
    if (coded) bytes = await decoded(call, bytes, encoding, res.statusCode);
    return { status: res.statusCode, headers: res.headers, text: charset === undefined ? vendorText(bytes) : inCharset(call, bytes, charset, res.statusCode) };
  } catch (error) {
    if (error instanceof SourceError) throw error;
    if (call.signal?.aborted) {
      // AbortSignal.timeout's own reason: the caller's bound on the whole answer (headers and every byte) ran out.
      if ((call.signal.reason as { name?: unknown } | undefined)?.name === 'TimeoutError') {
        throw new SourceError({ code: 'SOURCE_TIMEOUT', source: call.source, retryable: true, status, detail: `no complete answer within ${call.timeoutMs} ms`, cause: error });
      }
      throw new SourceError({ code: 'SOURCE_TIMEOUT', source: call.source, retryable: true, local: true, status, detail: 'cancelled: the request deadline passed', cause: error });
    }
    if (error instanceof undiciErrors.ResponseExceededMaxSizeError) throw tooLarge(call, error, status);
    const tunnel = proxyRefusal(error);
    if (tunnel !== undefined) {
      // The proxy, not the vendor, said no: credentials (407) or a policy (403) do not change in 100 ms; a proxy that
      // cannot reach the vendor (502, 503) may.
      const refused = tunnel === 407 || tunnel === 403;
      const hint = tunnel === 407 ? ' (check the user and password in HTTP_PROXY or HTTPS_PROXY)' : tunnel === 403 ? ' (its policy does not let this vendor through)' : '';
      throw new SourceError({ code: 'SOURCE_UNAVAILABLE', source: call.source, retryable: !refused, detail: `the proxy refused the tunnel: ${tunnel}${hint}`, cause: error });
    }
    if (error instanceof undiciErrors.HeadersOverflowError) {
      // The same request would get the same headers: not retried.
      const detail = `the answer's headers are larger than ${MAX_RESPONSE_HEADER_BYTES / 1024} KiB`;
      throw new SourceError({ code: 'SOURCE_BAD_RESPONSE', source: call.source, retryable: false, detail, cause: error });
    }
    if (error instanceof undiciErrors.BodyTimeoutError) {
      // Headers came on time and the body stopped: a vendor or a proxy dying mid-answer, not a silent one.
      throw new SourceError({ code: 'SOURCE_TIMEOUT', source: call.source, retryable: true, status, detail: `the body stopped arriving for ${call.timeoutMs} ms`, cause: error });
    }
    if (error instanceof undiciErrors.HeadersTimeoutError || error instanceof undiciErrors.ConnectTimeoutError) {
      throw new SourceError({ code: 'SOURCE_TIMEOUT', source: call.source, retryable: true, detail: `no answer within ${call.timeoutMs} ms`, cause: error });
    }
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && REFUSED_CERTIFICATE.test(code)) {
      // Expired, self-signed, for another name, from a CA not trusted: the next handshake would meet the same one.
      const detail = `the vendor's TLS certificate was refused: ${code} (${(error as Error).message})`;
      throw new SourceError({ code: 'SOURCE_UNAVAILABLE', source: call.source, retryable: false, detail, cause: error });
    }
    const hostname = (error as { hostname?: unknown }).hostname;
    if (code === 'ENOTFOUND') {
      // The name does not exist (NXDOMAIN): a wrong <SOURCE>_URL (or proxy URL) or a record removed, which the next
      // lookup meets again. A resolver that could not answer (EAI_AGAIN) is retried as any network error.
      const detail = `the host name ${String(hostname)} does not resolve (ENOTFOUND): is ${call.source.toUpperCase()}_URL right, or the proxy's where one is set?`;
      throw new SourceError({ code: 'SOURCE_UNAVAILABLE', source: call.source, retryable: false, detail, cause: error });
    }
    if (code === 'EMFILE' || code === 'ENFILE') {
      // Ours, not the vendor's: no descriptor was left to open a connection with. Not counted against the vendor's
      // health (opening its breaker would fail every caller for a minute), nor retried at once into the same wall.
      const whose = code === 'EMFILE' ? "this process's open-file limit" : "the machine's open-file table";
      const detail = `no file descriptor left to connect (${code}: ${whose} is full): see MAX_CLIENT_CONNECTIONS and ulimit -n in docs/operations.md`;
      throw new SourceError({ code: 'SOURCE_UNAVAILABLE', source: call.source, retryable: true, local: true, detail, cause: error });
    }
    throw new SourceError({
      code: 'SOURCE_UNAVAILABLE',
      source: call.source,
      retryable: true,
      status,
      detail: `network error${typeof code === 'string' ? ` ${code}` : ''}${typeof hostname === 'string' ? ` ${hostname}` : ''}`,
      cause: error,
    });
  }
}

/** Node's codes for a certificate the handshake refused (OpenSSL's verify errors, and a name that does not match). */
const REFUSED_CERTIFICATE =
  /^(CERT_|DEPTH_ZERO_SELF_SIGNED_CERT$|SELF_SIGNED_CERT_IN_CHAIN$|UNABLE_TO_(GET_ISSUER_CERT|VERIFY_LEAF_SIGNATURE|DECRYPT_CERT_SIGNATURE)|ERR_TLS_CERT_ALTNAME_INVALID$|HOSTNAME_MISMATCH$)/;

/** The status a forward proxy answered a CONNECT with, when that is why the call failed (undici says it only in words). */
function proxyRefusal(error: unknown): number | undefined {
  if (!(error instanceof undiciErrors.RequestAbortedError)) return undefined;
  const status = /^Proxy response \((\d{3})\) !== 200/.exec(error.message)?.[1];
  return status === undefined ? undefined : Number(status);
}

/** The request sent, until its answer's headers: again at once, on another connection, when it met one closed idle. */
async function sent(call: UpstreamCall): Promise<Dispatcher.ResponseData> {
  for (let replays = 0; ; replays++) {
    try {
      return await call.dispatcher.request({
        method: call.method,
        path: call.path,
        headers: call.headers,
        body: call.body,
        headersTimeout: call.timeoutMs,
        bodyTimeout: call.timeoutMs,
        signal: call.signal ?? null,
      });
    } catch (error) {
      if (!call.replayable || replays >= MAX_CLOSED_IDLE_REPLAYS || call.signal?.aborted || !metClosedIdleConnection(error)) throw error;
      call.onClosedIdle?.();
    }
  }
}

// The same request would get the same answer: not retried.
function tooLarge(call: UpstreamCall, cause: unknown, status: number | undefined): SourceError {
  return new SourceError({
    code: 'SOURCE_BAD_RESPONSE',
    source: call.source,
    retryable: false,
    status,
    detail: `the answer is larger than ${call.source.toUpperCase()}_MAX_RESPONSE_BYTES allows`,
    cause,
  });
}

const tooLargeError = (e: unknown) => (e as { code?: unknown } | null)?.code === 'ERR_BUFFER_TOO_LARGE';
const gunzip = promisify(zlib.gunzip);
const inflate = promisify(zlib.inflate);
const inflateRaw = promisify(zlib.inflateRaw);
const brotli = promisify(zlib.brotliDecompress);

/**
 * A body sent with a Content-Encoding we never asked for (we send no
 * Accept-Encoding; CDNs and some vendors compress anyway): decoded off the
 * event loop, its decoded size bounded like an answer's (a small gzip of
 * padding must not fill the heap), codings undone last-applied first.
 */
async function decoded(call: UpstreamCall, body: Buffer, header: string | string[], status: number): Promise<Buffer> {
  const codings = (Array.isArray(header) ? header.join(',') : header)
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
  const options = { maxOutputLength: call.maxBodyBytes ?? buffer.kMaxLength };
  let out = body;
  for (const coding of codings.reverse()) {
    try {
      if (coding === 'gzip' || coding === 'x-gzip') out = await gunzip(out, options);
      else if (coding === 'br') out = await brotli(out, options);
      // "deflate" is meant zlib-wrapped; some servers send it raw.
      else if (coding === 'deflate') out = await inflate(out, options).catch((e: unknown) => (tooLargeError(e) ? Promise.reject(e) : inflateRaw(out, options)));
      else throw new SourceError({ code: 'SOURCE_BAD_RESPONSE', source: call.source, retryable: false, status, detail: `the answer is in an encoding we cannot read (${coding})` });
    } catch (error) {
      if (error instanceof SourceError) throw error;
      if (tooLargeError(error)) throw tooLarge(call, error, status);
      throw new SourceError({ code: 'SOURCE_BAD_RESPONSE', source: call.source, retryable: false, status, detail: `the ${coding} answer does not decode`, cause: error });
    }
  }
  return out;
}

const utf8 = new TextDecoder();

/**
 * The charset a Content-Type names, when it is not UTF-8. JSON is UTF-8 (RFC
 * 8259), but older APIs send Latin-1 or windows-1252 and say so: read as UTF-8,
 * every accented letter became U+FFFD ("Zo� M�ller"), silently.
 */
function foreignCharset(value: string | undefined): string | undefined {
  if (value === undefined || value === 'application/json; charset=utf-8' || value === 'application/json') return undefined;
  const at = value.toLowerCase().indexOf('charset=');
  if (at === -1) return undefined;
  const charset = value
    .slice(at + 'charset='.length)
    .split(';')[0]!
    .trim()
    .replace(/^"(.*)"$/, '$1')
    .toLowerCase();
  return charset === 'utf-8' || charset === 'utf8' || charset === '' ? undefined : charset;
}

/** Bytes in the charset the answer named (the WHATWG Encoding labels TextDecoder knows), or SOURCE_BAD_RESPONSE for one it does not. */
function inCharset(call: UpstreamCall, bytes: Buffer, charset: string, status: number): string {
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(charset);
  } catch (error) {
    throw new SourceError({
      code: 'SOURCE_BAD_RESPONSE',
      source: call.source,
      retryable: false,
      status,
      detail: `the answer is in a charset we cannot read (${charset})`,
      cause: error,
    });
  }
  return decoder.decode(bytes);
}

/**
 * A vendor's bytes as text, as undici reads a plain body: UTF-8, a leading
 * byte order mark dropped (RFC 8259 §8.1 lets a parser ignore it). For a body
 * decoded here and for a webhook's, whose signature covered the raw bytes.
 */
export function vendorText(bytes: Uint8Array): string {
  return utf8.decode(bytes);
}

/** A vendor's own error codes are tokens; a field with spaces is prose, which may quote what was sent. */
const ERROR_CODE = /^[A-Za-z][\w.:-]{0,63}$/;

/**
 * The vendor's machine-readable error code in a JSON error body, for the log
 * line: Auth0's `errorCode` ("invalid_paging"), `error_code`, `code`, an
 * `error` that is a token ("invalid_api_key"), or `error.code` / `error.type`
 * (Stripe, Google). Never its message: prose may quote personal data sent.
 */
export function vendorErrorCode(text: string): string | undefined {
  if (text.length === 0 || text.length > 65_536 || (text[0] !== '{' && text.trimStart()[0] !== '{')) return undefined;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof body !== 'object' || body === null) return undefined;
  const { errorCode, error_code, code, error } = body as Record<string, unknown>;
  const nested = typeof error === 'object' && error !== null ? (error as Record<string, unknown>) : {};
  for (const candidate of [errorCode, error_code, code, error, nested.code, nested.type]) {
    if (typeof candidate === 'string' && ERROR_CODE.test(candidate)) return candidate;
  }
  return undefined;
}

/**
 * The error for a non-2xx answer. 404s are the caller's to interpret before
 * this. `keyed`: the request carried an Idempotency-Key, whose 409 says the
 * first request with that key is still being processed (the IETF
 * Idempotency-Key draft, Stripe): asked again later, it answers as the first did.
 */
export function errorForStatus(source: SourceName, res: UpstreamExchange, route: string, keyed = false): SourceError {
  const { status } = res;
  const code = vendorErrorCode(res.text);
  const detail = `${route} answered ${status}${code === undefined ? '' : ` (${code})`}`;
  if (status === 409 && keyed) {
    return new SourceError({
      code: 'SOURCE_UNAVAILABLE',
      source,
      retryable: true,
      status,
      detail: `${detail}: a request with the same Idempotency-Key is still being processed`,
      retryAfterMs: retryAfterMs(res.headers),
    });
  }
  if (status === 429) {
    return new SourceError({ code: 'SOURCE_RATE_LIMITED', source, retryable: true, status, detail, retryAfterMs: retryAfterMs(res.headers) });
  }
  if (status === 401 || status === 403) return new SourceError({ code: 'SOURCE_AUTH_FAILED', source, retryable: false, status, detail });
  if (status === 408) return new SourceError({ code: 'SOURCE_TIMEOUT', source, retryable: true, status, detail });
  if (status >= 500) {
    return new SourceError({ code: 'SOURCE_UNAVAILABLE', source, retryable: true, status, detail, retryAfterMs: retryAfterMs(res.headers) });
  }
  if (status >= 300 && status < 400) {
    // An API that moved: the operator points <SOURCE>_URL at the new place. Followed, a redirect could take the
    // credentials to another host.
    const where = headerValue(res.headers, 'location')?.slice(0, 200);
    return new SourceError({
      code: 'SOURCE_BAD_RESPONSE',
      source,
      retryable: false,
      status,
      detail: `${detail}${where ? `, moved to ${where}` : ''} (redirects are not followed)`,
    });
  }
  // Any other 4xx: the upstream refused what we sent; retrying will not help.
  return new SourceError({ code: 'SOURCE_BAD_RESPONSE', source, retryable: false, status, detail, vendorCode: code });
}
