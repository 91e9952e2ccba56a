import type { Plugin } from 'graphql-yoga';
import { unauthenticated } from '../errors.js';
import type { Viewer } from '../viewer.js';
import type { TokenVerifier } from '../auth/token-verifiers.js';

export interface JwtAuthOptions {
  /** Verifies a bearer token and says who it belongs to; throws when it is not valid. */
  verify: TokenVerifier;
}

/**
 * Every operation needs `Authorization: Bearer <JWT>`. No token, or one that
 * fails verification (bad signature, expired, missing `sub`), answers 401 with
 * UNAUTHENTICATED; the message says which of the two, never why verification
 * failed in detail.
 */
export function useJwtAuth(options: JwtAuthOptions): Plugin<{ viewer: Viewer }> {
  return {
    async onContextBuilding({ context, extendContext }) {
      const header = context.request.headers.get('authorization');
      if (!header) throw unauthenticated('Authentication required: send Authorization: Bearer <token>.');
      const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
      if (!match) throw unauthenticated('Authentication required: send Authorization: Bearer <token>.');
      let viewer: Viewer;
      try {
        viewer = await options.verify(match[1]!);
      } catch {
        throw unauthenticated('The bearer token is invalid or expired.');
      }
      extendContext({ viewer });
    },
  };
}
