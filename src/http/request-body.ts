import { isUtf8 } from 'node:buffer';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { nestsDeeperThan } from '../json-depth.js';

export interface RequestBodyLimits {
  /** Larger bodies get 413. */
  maxBodyBytes: number;
  /** A body not complete this long after its headers arrived gets 408. */
  requestTimeoutMs: number;
}

/**
 * How much of an oversized body is read and thrown away before the 413 is
 * written. A client that does not wait for `100 Continue` (undici's fetch,
 * most SDKs) is still sending when we answer; closing on it then resets the
 * connection and the client sees EPIPE or ECONNRESET instead of the 413.
 * Reading costs no memory (nothing is kept), only time, which the request
 * timeout bounds; past this the connection is closed anyway.
 */
const DRAIN_MAX_BYTES = 64 * 1024 * 1024;

/**
 * Reads a request body before GraphQL sees it, so every way a body can be
 * wrong gets a readable JSON answer: over the limit → 413 (before `100
 * Continue` when the client asked for one, see `refuseBeforeContinue`),
 * slower than the request timeout → 408 within it (Node's own check runs only
 * every 30 s and answers without a body), not valid UTF-8 → 400 (decoding
 * would turn it into U+FFFD and run it), chunked without a length → 411.
 * Resolves to the body, or null when it has answered the request itself.
 */
export function readRequestBody(req: IncomingMessage, res: ServerResponse, limits: RequestBodyLimits): Promise<Buffer | null> {
  const declared = req.headers['content-length'];
  if (declared === undefined && req.headers['transfer-encoding'] !== undefined) {
    refuse(res, 411, 'Send Content-Length with the request body.');
    return Promise.resolve(null);
  }
  const length = Number(declared ?? 0);
  const tooLarge = length > limits.maxBodyBytes;
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let read = 0;
    let done = false;
    const finish = (body: Buffer | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onError);
      resolve(body);
    };
    const timer = setTimeout(() => {
      refuse(res, 408, `The request body did not arrive within ${limits.requestTimeoutMs} ms.`, req);
      finish(null);
    }, limits.requestTimeoutMs);
    const onData = (chunk: Buffer) => {
      read += chunk.length;
      if (tooLarge) {
        if (read > DRAIN_MAX_BYTES) {
          tooLargeAnswer();
          finish(null);
        }
        return;
      }
      chunks.push(chunk);
    };
    const tooLargeAnswer = () => refuse(res, 413, `The request body may be at most ${limits.maxBodyBytes} bytes.`, req);
    const onEnd = () => {
      if (tooLarge) {
        tooLargeAnswer();
        return finish(null);
      }
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, read);
      if (!isUtf8(body)) {
        refuse(res, 400, 'The request body is not valid UTF-8.');
        return finish(null);
      }
      finish(body);
    };
    // The client went away (or the stream broke) before the end: nobody to answer.
    const onError = () => finish(null);
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onError);
  });
}

/**
 * For `Expect: 100-continue`: a declared length over the limit is refused
 * before the client sends the body (Node sends no `100 Continue` itself while
 * a 'checkContinue' listener is set). True when it answered.
 */
export function refuseBeforeContinue(req: IncomingMessage, res: ServerResponse, maxBodyBytes: number): boolean {
  if (Number(req.headers['content-length'] ?? 0) <= maxBodyBytes) return false;
  refuse(res, 413, `The request body may be at most ${maxBodyBytes} bytes.`);
  return true;
}

/** A JSON error and `Connection: close`; with `req`, a body still arriving is cut once the answer is out. */
export function refuse(res: ServerResponse, status: number, message: string, req?: IncomingMessage): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ errors: [{ message, extensions: { code: status === 408 ? 'REQUEST_TIMEOUT' : status === 413 ? 'PAYLOAD_TOO_LARGE' : 'BAD_REQUEST' } }] });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' });
  res.end(body, () => {
    if (req && !req.complete) req.socket.destroy();
  });
}

/**
 * Whether yoga reads a body of this Content-Type as JSON (its post-json
 * parser): the first listed type is application/json or
 * application/graphql+json, alone or with parameters. Written out, not split
 * and mapped: it runs on every POST, response-cache hits included.
 */
function isJsonType(header: string): boolean {
  const comma = header.indexOf(',');
  const type = comma === -1 ? header : header.slice(0, comma);
  return type === 'application/json' || type.startsWith('application/json;') || type === 'application/graphql+json' || type.startsWith('application/graphql+json;');
}

/**
 * A POST body as yoga would parse it: JSON when the request's Content-Type is
 * one yoga reads as JSON (by yoga's own test, so the two never disagree) and
 * it parses; undefined otherwise (yoga then reads the bytes and answers what
 * they are).
 */
export function parsedJsonBody(req: IncomingMessage, body: Buffer): unknown {
  const type = req.headers['content-type'];
  if (type === undefined || !isJsonType(type)) return undefined;
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * What yoga's node adapter (@whatwg-node/server) is handed as `req.body`: the
 * parsed JSON when it is an object or array with entries, which its request
 * then returns from `json()` without reading or parsing again; else the bytes.
 * The adapter tests a body with `Object.keys(body).length`, which for bytes
 * makes a string of every index: 270,000 instructions for a 1.8 KB list query
 * (bench/instructions.ts, list-50), 11 % of its cost.
 */
export function bodyForYoga(body: Buffer, json: unknown): unknown {
  return typeof json === 'object' && json !== null && hasEntries(json) ? json : body;
}

/** `Object.keys(value).length > 0` for parsed JSON (no inherited keys), without making the list. */
function hasEntries(value: object): boolean {
  for (const _ in value) return true;
  return false;
}

/**
 * How deep a request's JSON (a POST's body, a GET's `variables` and
 * `extensions`) may nest. No operation of this schema needs more than a few
 * levels; at a few thousand, JSON.parse reads it but JSON.stringify throws, and
 * the response cache's key is a stringify of the variables: such a request was
 * an internal error with two stacks in the log.
 */
export const MAX_REQUEST_JSON_DEPTH = 64;
export const TOO_DEEP = `The request's JSON nests more than ${MAX_REQUEST_JSON_DEPTH} levels deep.`;

export function requestJsonTooDeep(json: unknown): boolean {
  return nestsDeeperThan(json, MAX_REQUEST_JSON_DEPTH);
}

/** The same for a GET's `variables` and `extensions` (what does not parse is yoga's to refuse). */
export function queryJsonTooDeep(url: string): boolean {
  const at = url.indexOf('?');
  if (at === -1 || (!url.includes('variables=', at) && !url.includes('extensions=', at))) return false;
  const params = new URLSearchParams(url.slice(at + 1));
  for (const name of ['variables', 'extensions']) {
    const text = params.get(name);
    if (text === null) continue;
    try {
      if (requestJsonTooDeep(JSON.parse(text))) return true;
    } catch {
      // Not JSON: yoga answers it.
    }
  }
  return false;
}
