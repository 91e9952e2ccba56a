import { createSecretKey } from 'node:crypto';
import { createRemoteJWKSet, customFetch, decodeJwt, jwtVerify, type FetchImplementation, type JWTPayload, type JWTVerifyOptions } from 'jose';
import { fetch as undiciFetch, type Dispatcher } from 'undici';
import type { ProxySettings } from '../config-types.js';
import { proxyAgent } from '../egress-proxy.js';
import { lruOfEntries } from '../cache/lru-of-entries.js';
import type { Viewer } from '../viewer.js';

export type TokenVerifier = (token: string) => Promise<Viewer>;

/**
 * Verifies HS256 bearer tokens: signature, `exp` (required), `sub` (required).
 * A space-separated `scope` claim containing `admin` sees every user.
 * Throws on any failure; the caller decides what the client is told.
 */
export interface TokenChecks {
  /** `iss` must equal this when set. */
  issuer?: string | undefined;
  /** `aud` must contain this when set. */
  audience?: string | undefined;
  /** Leeway for `exp` and `nbf` against clock skew between us and the token issuer. */
  clockToleranceSec?: number;
}

export function hs256Verifier(secret: string, checks: TokenChecks = {}): TokenVerifier {
  // A KeyObject made once: given raw bytes, jose would import the key again on every verify.
  const key = createSecretKey(Buffer.from(secret, 'utf8'));
  const options = verifyOptions(['HS256'], checks);
  return async (token) => viewerOf((await jwtVerify(token, key, options)).payload);
}

/**
 * RS256/ES256 tokens from an identity provider, verified with the keys its
 * JWKS URL publishes. jose caches the key set (10 min) and fetches it again
 * when a token names a key id it does not know (at most every 30 s), so key
 * rotation needs no restart.
 */
export function jwksVerifier(jwksUrl: string, checks: TokenChecks = {}, proxy: ProxySettings | null = null): TokenVerifier {
  // Through the forward proxy, where one is set: an identity provider is outside like the vendors.
  const dispatcher = proxy ? proxyAgent(proxy) : undefined;
  const keys = createRemoteJWKSet(new URL(jwksUrl), {
    cacheMaxAge: 600_000,
    cooldownDuration: 30_000,
    timeoutDuration: 5000,
    ...(dispatcher ? { [customFetch]: viaDispatcher(dispatcher) } : {}),
  });
  const options = verifyOptions(['RS256', 'ES256'], checks);
  return async (token) => viewerOf((await jwtVerify(token, keys, options)).payload);
}

/** jose's fetch for the JWKS, sent through `dispatcher` (undici's fetch takes one; the global fetch's is not ours to set). */
function viaDispatcher(dispatcher: Dispatcher): FetchImplementation {
  return async (url, { method, redirect, signal, headers }) =>
    (await undiciFetch(url, { method, redirect, signal, headers: Object.fromEntries(headers), dispatcher })) as unknown as Response;
}

function verifyOptions(algorithms: string[], checks: TokenChecks): JWTVerifyOptions {
  return {
    algorithms,
    requiredClaims: ['exp', 'sub'],
    clockTolerance: checks.clockToleranceSec ?? 0,
    ...(checks.issuer ? { issuer: checks.issuer } : {}),
    ...(checks.audience ? { audience: checks.audience } : {}),
  };
}

function viewerOf(payload: JWTPayload): Viewer {
  const scope = typeof payload.scope === 'string' ? payload.scope.split(' ') : [];
  return { userId: payload.sub!, admin: scope.includes('admin') };
}

/**
 * Remembers tokens that verified, until their `exp` (plus the skew
 * tolerance): a client sends the same token with every request, and jose's
 * WebCrypto verify was 16 % of a cached dashboard's CPU. Safe because the key
 * is the whole token, signature included — a forged or altered token is a
 * different key and is verified in full. Failures are never remembered.
 */
export function cachedVerifier(verify: TokenVerifier, options: { max?: number; clockToleranceSec?: number } = {}): TokenVerifier {
  const verified = lruOfEntries<string, Viewer>(options.max ?? 10_000, { ttlAutopurge: false });
  const leewayMs = (options.clockToleranceSec ?? 0) * 1000;
  return async (token) => {
    const hit = verified.get(token);
    if (hit) return hit;
    const viewer = await verify(token);
    const exp = decodeJwt(token).exp;
    const ttl = typeof exp === 'number' ? exp * 1000 + leewayMs - Date.now() : 0;
    if (ttl > 0) verified.set(token, viewer, { ttl: Math.min(ttl, 3_600_000) });
    return viewer;
  };
}
