import { createSecretKey } from 'node:crypto';
import { jwtVerify } from 'jose';

/** Who is asking: the token's subject, and whether its scope makes it an admin. */
export interface Viewer {
  userId: string;
  admin: boolean;
}

export type TokenVerifier = (token: string) => Promise<Viewer>;

/**
 * Verifies HS256 bearer tokens: signature, `exp` (required), `sub` (required).
 * A space-separated `scope` claim containing `admin` sees every user.
 * Throws on any failure; the caller decides what the client is told.
 */
export function hs256Verifier(secret: string): TokenVerifier {
  // A KeyObject made once: given raw bytes, jose would import the key again on every verify.
  const key = createSecretKey(Buffer.from(secret, 'utf8'));
  return async (token) => {
    const { payload } = await jwtVerify(token, key, { algorithms: ['HS256'], requiredClaims: ['exp', 'sub'] });
    const scope = typeof payload.scope === 'string' ? payload.scope.split(' ') : [];
    return { userId: payload.sub!, admin: scope.includes('admin') };
  };
}

/** True when the viewer may read `userId`'s private fields. */
export function canReadPrivate(viewer: Viewer, userId: string): boolean {
  return viewer.admin || viewer.userId === userId;
}
