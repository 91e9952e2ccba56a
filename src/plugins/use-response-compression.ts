import type { Plugin } from 'graphql-yoga';
import { compressBody, negotiateEncoding } from '../http/content-encoding.js';

/** What is worth compressing: GraphQL results, GraphiQL's page, the metrics text. Event streams are never buffered here. */
const COMPRESSIBLE = /^(application\/(json|graphql-response\+json)|text\/(html|plain))\b/i;

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
      const encoding = negotiateEncoding(accept);
      if (encoding === null) return;
      const body = Buffer.from(await response.text());
      if (body.length < thresholdBytes) {
        setResponse(new fetchAPI.Response(body, { status: response.status, statusText: response.statusText, headers: response.headers }));
        return;
      }
      const compressed = await compressBody(body, encoding);
      const headers = new fetchAPI.Headers(response.headers);
      headers.set('content-encoding', encoding);
      headers.delete('content-length');
      setResponse(new fetchAPI.Response(compressed, { status: response.status, statusText: response.statusText, headers }));
    },
  };
}
