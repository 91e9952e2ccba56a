import type { OutgoingHttpHeaders } from 'node:http';

/** The CORS headers yoga adds for an allowed origin (none without an Origin); null for an origin it would refuse. */
export function corsHeaders(origins: readonly string[]): (origin: string | undefined) => OutgoingHttpHeaders | null {
  const none: OutgoingHttpHeaders = {};
  if (origins.length === 0) return () => none;
  const allowed = new Set(origins);
  const shared = {
    'access-control-allow-methods': 'GET, POST',
    'access-control-allow-headers': 'authorization, content-type, x-request-id',
    'access-control-allow-credentials': 'true',
    'access-control-expose-headers': 'x-request-id, retry-after',
  };
  return (origin) => {
    if (origin === undefined) return none;
    if (!allowed.has(origin) && !allowed.has('*')) return null;
    return { 'access-control-allow-origin': origin, ...shared };
  };
}
