import { promisify } from 'node:util';
import { brotliCompress, brotliCompressSync, constants, gzip, gzipSync, type BrotliOptions } from 'node:zlib';
import Negotiator from 'negotiator';

export type ContentEncoding = 'br' | 'gzip';

const ENCODINGS = ['br', 'gzip', 'identity'];
const PREFERRED = ['br', 'gzip'];
/** Up to this size a body is compressed in place (tens of µs); larger ones on the thread pool, so the loop keeps going. */
const IN_PLACE_MAX_BYTES = 64 * 1024;
/** Clients send a handful of distinct Accept-Encoding values; each is negotiated once. */
const NEGOTIATED_MAX = 256;

const brotliAsync = promisify(brotliCompress);
const gzipAsync = promisify(gzip);
const negotiated = new Map<string, ContentEncoding | null>();

/** The encoding to use for an Accept-Encoding value: by q-value, then ours (browsers list gzip before br); null for none. */
export function negotiateEncoding(accept: string): ContentEncoding | null {
  let encoding = negotiated.get(accept);
  if (encoding !== undefined) return encoding;
  const negotiator = new Negotiator({ headers: { 'accept-encoding': accept } });
  // negotiator 0.6 takes the server's preference as a second argument; @types/negotiator does not know it.
  const chosen = (negotiator.encoding as (this: Negotiator, available: string[], preferred: string[]) => string | undefined).call(negotiator, ENCODINGS, PREFERRED);
  encoding = chosen === 'br' || chosen === 'gzip' ? chosen : null;
  if (negotiated.size >= NEGOTIATED_MAX) negotiated.clear();
  negotiated.set(accept, encoding);
  return encoding;
}

/** Quality 4 (fast); a window fitted to the body (each stream allocates it: at the default 4 MiB, 50 at once cost ~30 MB). */
function brotliOptions(bytes: number): BrotliOptions {
  const lgwin = Math.min(constants.BROTLI_MAX_WINDOW_BITS, Math.max(constants.BROTLI_MIN_WINDOW_BITS + 6, Math.ceil(Math.log2(bytes + 1))));
  return { params: { [constants.BROTLI_PARAM_QUALITY]: 4, [constants.BROTLI_PARAM_LGWIN]: lgwin, [constants.BROTLI_PARAM_SIZE_HINT]: bytes } };
}

/** The body compressed in one call: in place when small, on the thread pool when large. */
export async function compressBody(body: Buffer, encoding: ContentEncoding): Promise<Buffer<ArrayBuffer>> {
  if (body.length <= IN_PLACE_MAX_BYTES) return compressBodySync(body, encoding);
  return encoding === 'br' ? brotliAsync(body, brotliOptions(body.length)) : gzipAsync(body);
}

export function compressBodySync(body: Buffer, encoding: ContentEncoding): Buffer<ArrayBuffer> {
  return encoding === 'br' ? brotliCompressSync(body, brotliOptions(body.length)) : gzipSync(body);
}
