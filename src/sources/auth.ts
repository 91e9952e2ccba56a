import type { Dispatcher } from 'undici';
import { z } from 'zod';
import { SourceError, type SourceName } from '../errors.js';
import type { MaybePromise } from '../maybe-promise.js';
import { errorForStatus, exchange } from './upstream-http.js';

/** How a source proves itself to its upstream. */
export interface UpstreamAuth {
  /** Headers for the next call: at once when the credential is held, a promise when it must be fetched first. */
  headers(): MaybePromise<Record<string, string>>;
  /**
   * Called when a call made with `sent` headers got a 401. True when a fresh
   * credential may fix it, and the call is retried once.
   */
  rejected(sent: Record<string, string>): boolean;
  /** Called when a call made with `sent` headers got anything but a 401: the credential works. */
  accepted?(sent: Record<string, string>): void;
}

export class ApiKeyAuth implements UpstreamAuth {
  private readonly value: Record<string, string>;
  constructor(header: string, key: string) {
    this.value = { [header]: key };
  }
  headers(): Record<string, string> {
    return this.value;
  }
  rejected(): boolean {
    return false;
  }
}

export class BearerAuth extends ApiKeyAuth {
  constructor(token: string) {
    super('authorization', `Bearer ${token}`);
  }
}

/**
 * RFC 6749 §5.1 only recommends `expires_in`, and some servers send it as a
 * string: both are read, and a token without one is kept this long (a 401
 * drops it sooner).
 */
const LIFETIME_WHEN_UNSAID_S = 3600;
const tokenResponse = z.object({
  access_token: z.string().min(1),
  token_type: z.string().optional(),
  expires_in: z
    .union([
      z.number(),
      z
        .string()
        .regex(/^\s*\d+(\.\d+)?\s*$/)
        .transform(Number),
    ])
    .pipe(z.number().positive())
    .optional(),
});

export interface OAuth2Options {
  source: SourceName;
  dispatcher: Dispatcher;
  /** Path of the token endpoint on the dispatcher's origin. */
  tokenPath: string;
  clientId: string;
  clientSecret: string;
  audience: string;
  timeoutMs: number;
}

interface Token {
  header: Record<string, string>;
  /** When to start fetching a new one while this one still works. */
  refreshAt: number;
  expiresAt: number;
}

/** After a failed token fetch, none again for this long (doubling per failure up to the max), unless the server named its own wait. */
const TOKEN_BACKOFF_MS = 500;
const TOKEN_BACKOFF_MAX_MS = 30_000;
/**
 * A token refused with a 401 is replaced at once the first time (it expired
 * or was revoked early). Its replacement refused too, before any call was
 * accepted, says the fault is not the token's age (a revoked grant, a wrong
 * audience): the next replacement waits this long, doubling per refusal up to
 * the max. Token endpoints are rate-limited and often metered (Auth0 counts
 * machine-to-machine tokens per month); a fetch per call would spend them.
 */
const REFUSED_TOKEN_BACKOFF_MS = 1_000;
const REFUSED_TOKEN_BACKOFF_MAX_MS = 5 * 60_000;

/**
 * OAuth2 client credentials. The token is cached; one fetch at a time however
 * many calls need it; refreshed in the background ahead of expiry (the last
 * fifth of its life, at most a minute) so callers never wait for it after the
 * first; on a 401 the token that failed is dropped and the next call fetches.
 * A failed fetch is the answer to every call until its Retry-After (or a
 * backoff) has passed: token endpoints are rate-limited hard, and refetching
 * at the rate of calls would keep one that said 429 refusing.
 */
export class OAuth2ClientCredentials implements UpstreamAuth {
  // Its times (a token's expiry, the backoffs) are on the monotonic clock: a wall clock stepped back must not keep a
  // failed token fetch from being tried again for as long as the step.
  private token: Token | undefined;
  private fetching: Promise<Token> | undefined;
  private failure: { error: unknown; until: number; count: number } | undefined;
  /** Tokens replaced after a 401 since a call was last accepted, when the last was, and its header. */
  private replaced: { count: number; at: number; header: string | undefined } = { count: 0, at: 0, header: undefined };

  constructor(private readonly options: OAuth2Options) {}

  headers(): MaybePromise<Record<string, string>> {
    const now = performance.now();
    const token = this.token;
    if (token && now < token.expiresAt) {
      if (now >= token.refreshAt) this.refresh().catch(() => undefined);
      return token.header;
    }
    return this.refresh().then((t) => t.header);
  }

  rejected(sent: Record<string, string>, now = performance.now()): boolean {
    const { count, at, header } = this.replaced;
    // A call made with a token already replaced: its retry takes the new one, and it is no new evidence.
    if (sent.authorization === header) return true;
    if (count > 0 && now < at + Math.min(REFUSED_TOKEN_BACKOFF_MAX_MS, REFUSED_TOKEN_BACKOFF_MS * 2 ** (count - 1))) return false;
    this.replaced = { count: count + 1, at: now, header: sent.authorization };
    if (this.token && this.token.header.authorization === sent.authorization) this.token = undefined;
    return true;
  }

  accepted(sent: Record<string, string>): void {
    if (this.replaced.count > 0 && this.token?.header.authorization === sent.authorization) this.replaced = { ...this.replaced, count: 0 };
  }

  /** One fetch shared by every waiting call, so it is bounded by its own timeout, not any one caller's deadline. */
  private refresh(): Promise<Token> {
    if (this.fetching) return this.fetching;
    const failure = this.failure;
    if (failure && performance.now() < failure.until) return Promise.reject(failure.error);
    this.fetching = this.fetchToken()
      .then(
        (token) => {
          this.failure = undefined;
          return token;
        },
        (error: unknown) => {
          const count = (failure?.count ?? 0) + 1;
          const named = error instanceof SourceError ? error.retryAfterMs : undefined;
          this.failure = { error, until: performance.now() + (named ?? Math.min(TOKEN_BACKOFF_MAX_MS, TOKEN_BACKOFF_MS * 2 ** (count - 1))), count };
          throw error;
        },
      )
      .finally(() => {
        this.fetching = undefined;
      });
    return this.fetching;
  }

  private async fetchToken(): Promise<Token> {
    const o = this.options;
    const startedAt = performance.now();
    const res = await exchange({
      dispatcher: o.dispatcher,
      source: o.source,
      method: 'POST',
      path: o.tokenPath,
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ grant_type: 'client_credentials', client_id: o.clientId, client_secret: o.clientSecret, audience: o.audience }),
      timeoutMs: o.timeoutMs,
      // A client-credentials grant asked twice gives two tokens, both good.
      replayable: true,
      // The whole answer within the timeout, not only each gap in it: a token dribbled a byte at a time would hold every call.
      signal: AbortSignal.timeout(o.timeoutMs),
    });
    if (res.status !== 200) throw errorForStatus(o.source, res, 'POST token');
    let parsed;
    try {
      parsed = tokenResponse.safeParse(JSON.parse(res.text));
    } catch {
      parsed = undefined;
    }
    if (!parsed?.success) {
      throw new SourceError({ code: 'SOURCE_BAD_RESPONSE', source: o.source, retryable: false, detail: 'token response is not an OAuth2 token' });
    }
    const lifetimeMs = (parsed.data.expires_in ?? LIFETIME_WHEN_UNSAID_S) * 1000;
    const token: Token = {
      header: { authorization: `Bearer ${parsed.data.access_token}` },
      expiresAt: startedAt + lifetimeMs,
      refreshAt: startedAt + lifetimeMs - Math.min(60_000, lifetimeMs / 5),
    };
    this.token = token;
    return token;
  }
}
