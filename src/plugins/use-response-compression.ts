import { promisify } from 'node:util';
import { brotliCompress, brotliCompressSync, constants, gzip, gzipSync, type BrotliOptions } from 'node:zlib';
import Negotiator from 'negotiator';
import type { Plugin } from 'graphql-yoga';

/** What is worth compressing: GraphQL results, GraphiQL's page, the metrics text. Event streams are never buffered here. */
const COMPRESSIBLE = /^(application\/(json|graphql-response\+json)|text\/(html|plain))\b/i;
/** Up to this size a body is compressed in place (tens of µs); larger ones on the thread pool, so the loop keeps going. */
const IN_PLACE_MAX_BYTES = 64 * 1024;
const ENCODINGS = ['br', 'gzip', 'identity'];
const PREFERRED = ['br', 'gzip'];

const brotliAsync = promisify(brotliCompress);
const gzipAsync = promisify(gzip);

/** The encoding to use: by q-value, then ours (browsers list gzip before br). */
function negotiate(accept: string): string | undefined {
  const negotiator = new Negotiator({ headers: { 'accept-encoding': accept } });
  // negotiator 0.6 takes the server's preference as a second argument; @types/negotiator does not know it.
  return (negotiator.encoding as (this: Negotiator, available: string[], preferred: string[]) => string | undefined).call(negotiator, ENCODINGS, PREFERRED);
}

/** Quality 4 (fast); a window fitted to the body (each stream allocates it: at the default 4 MiB, 50 at once cost ~30 MB). */
function brotliOptions(bytes: number): BrotliOptions {
  const lgwin = Math.min(constants.BROTLI_MAX_WINDOW_BITS, Math.max(constants.BROTLI_MIN_WINDOW_BITS + 6, Math.ceil(Math.log2(bytes + 1))));
  return { params: { [constants.BROTLI_PARAM_QUALITY]: 4, [constants.BROTLI_PARAM_LGWIN]: lgwin, [constants.BROTLI_PARAM_SIZE_HINT]: bytes } };
}

/**
 * gzip or brotli by the client's Accept-Encoding (q-values honoured, brotli
 * preferred), for responses of at least `thresholdBytes`. The body is whole by
 * then (yoga answers a query with one string), so it is compressed in one
 * call rather than through a stream per response: the `compression`
 * middleware's streams on the thread pool cost more CPU than the query itself.
 */
export interface ResponseCompressionOptions {
  /** Bodies smaller than this go out as they are (compressing a few hundred bytes costs more than it saves). @default 1024 */
  thresholdBytes?: number;
}

export function useResponseCompression({ thresholdBytes = 1024 }: ResponseCompressionOptions = {}): Plugin {
  return {
    async onResponse({ request, response, setResponse, fetchAPI }) {
      const type = response.headers.get('content-type');
      if (!type || !COMPRESSIBLE.test(type)) return;
      response.headers.append('vary', 'Accept-Encoding');
      const accept = request.headers.get('accept-encoding');
      if (!accept || request.method === 'HEAD' || response.status === 204 || response.status === 304 || response.headers.has('content-encoding')) return;
      if (/\bno-transform\b/i.test(response.headers.get('cache-control') ?? '')) return;
      const encoding = negotiate(accept);
      if (encoding !== 'br' && encoding !== 'gzip') return;
      const body = Buffer.from(await response.text());
      if (body.length < thresholdBytes) {
        setResponse(new fetchAPI.Response(body, { status: response.status, statusText: response.statusText, headers: response.headers }));
        return;
      }
      const compressed =
        encoding === 'br'
          ? body.length <= IN_PLACE_MAX_BYTES
            ? brotliCompressSync(body, brotliOptions(body.length))
            : await brotliAsync(body, brotliOptions(body.length))
          : body.length <= IN_PLACE_MAX_BYTES
            ? gzipSync(body)
            : await gzipAsync(body);
      const headers = new fetchAPI.Headers(response.headers);
      headers.set('content-encoding', encoding);
      headers.delete('content-length');
      setResponse(new fetchAPI.Response(compressed, { status: response.status, statusText: response.statusText, headers }));
    },
  };
}
