import type { z } from 'zod';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { applyDrift, hasDrift } from './drift.js';
import { faultProfileSchema, NO_FAULTS, type FaultProfile, type FaultProfileInput } from './faults.js';
import { webhookTargetSchema, type WebhookSender } from './webhooks.js';
import { UpstreamStats } from './stats.js';

/**
 * The machinery every simulated upstream shares: a plain node:http server on
 * loopback, a small router, the fault profile and the stats, and the admin
 * endpoint (`/__admin/faults`, `/__admin/stats`, `/__admin/reset`). An API
 * (identity, analytics, …) is its routes, its auth check and its 429 dialect.
 */

export interface UpstreamRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  /** Decoded path parameters, in pattern order. */
  params: string[];
  /** Parsed JSON body, or undefined when there was none. */
  body: unknown;
  /** `http://host:port` as the client addressed us; for absolute Link URLs. */
  origin: string;
  recordBatch(size: number): void;
  /** The `maxPerPage` fault: a page size the API caps `per_page` at (null: none). */
  pageCap: number | null;
  /** The `searchLagMs` fault: how long after it is made a change reaches identity's search index (0: at once). */
  searchLagMs: number;
  /** The `maxResults` fault: how many results a list pages through at most (null: all). */
  resultCap: number | null;
  /** The `ignoreSort` fault: lists come in the vendor's own order whatever `sort` asks. */
  ignoreSort: boolean;
  /** The drift faults (`extraFields`, renamed, retyped and set fields), for what the vendor sends besides its answer: its webhook events. */
  drift: (body: unknown) => unknown;
  /** The `readLagMs` fault: how long after it is written a change shows in the API's reads (0: at once). */
  readLagMs: number;
  /** The `writeHoldMs` fault: how long a keyed write holds its Idempotency-Key before it is written (0: none). */
  writeHoldMs: number;
}

export interface Reply {
  status: number;
  /** Serialized as JSON unless `rawBody` is given. */
  body?: unknown;
  rawBody?: string;
  headers?: Record<string, string>;
  /** Whitespace after the body up to this many bytes in all (the `padBodyBytes` fault). */
  padTo?: number;
  /** The `contentEncoding` fault: the body (padding included) compressed so, unasked. */
  encoding?: 'gzip' | 'deflate' | 'br';
  /** The `down: "stall"` fault: only the first half of the body is sent, and the connection is left open. */
  stall?: boolean;
  /** The `down: "trickle"` fault: the body is sent a byte every TRICKLE_EVERY_MS. */
  trickle?: boolean;
  /** The `byteOrderMark` fault: the body starts with a UTF-8 byte order mark. */
  bom?: boolean;
  /** The `latin1` fault: the body in ISO-8859-1, labelled so. */
  latin1?: boolean;
}

export interface Route {
  method: string;
  /** Stats name and fault filter name, e.g. "GET /v1/users/:id/events". */
  name: string;
  pattern: RegExp;
  /** A name of its own for some queries of this route (stats and faults tell them apart), else `name`. */
  nameFor?(query: URLSearchParams): string | null;
  handler(req: UpstreamRequest): Reply | Promise<Reply>;
  public?: boolean;
}

/** The `down: "trickle"` fault's pace: a byte this often. */
const TRICKLE_EVERY_MS = 100;

export interface RateWindow {
  limit: number;
  remaining: number;
  /** Unix second at which the window resets, on the vendor's clock. */
  resetSec: number;
  /** The vendor's clock's Unix second now (the `clockSkewMs` fault sets it apart from ours). */
  nowSec: number;
}

export interface UpstreamApi {
  readonly name: string;
  readonly routes: Route[];
  /** null when the request may proceed, else the API's own 401. */
  authenticate(req: UpstreamRequest): Reply | null;
  /** The API's dialect of "too many requests". */
  rateLimited(window: RateWindow): Reply;
  /** Headers every response carries (identity's x-ratelimit-*). */
  decorate?(reply: Reply, window: RateWindow): void;
  /** A vendor that pushes events: configured through `POST /__admin/webhook`. */
  webhooks?: WebhookSender;
  /** The API's own admin routes (a change made behind the server's back); not authenticated, faulted or counted. */
  adminRoutes?: Route[];
}

export function json(status: number, body: unknown, headers?: Record<string, string>): Reply {
  return headers ? { status, body, headers } : { status, body };
}

const MAX_BODY_BYTES = 1_048_576;
/** The limit advertised in rate-limit headers when no rate-limit fault is set. */
const NOMINAL_LIMIT = 1000;
/** How long an idle connection is kept (and said to be, in the Keep-Alive header) without the `idleCloseMs` fault. */
const KEEP_ALIVE_MS = 65_000;

export class SimulatedUpstream {
  readonly stats = new UpstreamStats();
  private faults: FaultProfile = NO_FAULTS;
  /** Errors injected since the profile was set (for `errorCount`). */
  private injected = 0;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  /** When each connection last finished an answer (performance.now()), for `idleCloseMs`. */
  private readonly answeredAt = new WeakMap<Socket, number>();
  private readonly hanging = new Set<ServerResponse>();
  /** Answers being sent a byte at a time: not dropped when the faults change (a dribbling proxy does not notice). */
  private readonly trickling = new Set<ServerResponse>();
  private port = 0;
  private host = '127.0.0.1';
  private refuseTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(readonly api: UpstreamApi) {
    this.server = createServer({ keepAliveTimeout: KEEP_ALIVE_MS }, (req, res) => {
      if (this.closedIdle(req, res)) return;
      // Node then closes the connection once the answer is sent.
      if (this.faults.closeEachConnection && !req.url?.startsWith('/__admin/')) res.setHeader('connection', 'close');
      this.handle(req, res).catch(() => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end('{"error":"internal"}');
      });
    });
    this.server.on('connection', (socket) => {
      this.stats.connectionOpened();
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  get url(): string {
    return `http://${this.host}:${this.port}`;
  }

  async listen(port = 0, host = '127.0.0.1'): Promise<string> {
    this.host = host;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const address = this.server.address();
    if (address && typeof address === 'object') this.port = address.port;
    return this.url;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.api.webhooks?.close();
    clearTimeout(this.refuseTimer);
    this.dropHanging();
    for (const res of this.trickling) res.destroy();
    for (const socket of this.sockets) socket.destroy();
    if (this.server.listening) await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  getFaults(): FaultProfile {
    return this.faults;
  }

  /** Replaces the fault profile (what is not given is off). Throws a ZodError on a bad profile. */
  setFaults(input: FaultProfileInput): FaultProfile {
    this.faults = faultProfileSchema.parse(input);
    this.injected = 0;
    // Node's server closes idle connections after keepAliveTimeout and says so in a Keep-Alive header; a vendor with
    // an idle close of its own says nothing (0 turns both off here; closedIdle plays the close).
    this.server.keepAliveTimeout = this.faults.idleCloseMs === null ? KEEP_ALIVE_MS : 0;
    this.dropHanging();
    if (this.faults.down === 'refuse') this.refuse(this.faults.downForMs);
    return this.faults;
  }

  private refuse(forMs: number): void {
    clearTimeout(this.refuseTimer);
    this.server.close();
    for (const socket of this.sockets) socket.destroy();
    this.refuseTimer = setTimeout(() => {
      this.faults = { ...this.faults, down: null };
      if (!this.closed) this.server.listen(this.port, this.host);
    }, forMs);
    this.refuseTimer.unref();
  }

  /**
   * Under `idleCloseMs`, a request on a connection idle that long meets it closed: reset, unanswered, uncounted in the
   * routes' calls. Otherwise the connection's answer is timed for the next request's check.
   */
  private closedIdle(req: IncomingMessage, res: ServerResponse): boolean {
    const idleMs = this.faults.idleCloseMs;
    // Off (as in every benchmark), nothing is timed: the fault counts from the first answer after it is set.
    if (idleMs === null || req.url?.startsWith('/__admin/')) return false;
    const socket = req.socket;
    const answeredAt = this.answeredAt.get(socket);
    if (answeredAt !== undefined && performance.now() - answeredAt >= idleMs) {
      this.stats.closedIdle();
      socket.destroy();
      return true;
    }
    res.once('finish', () => this.answeredAt.set(socket, performance.now()));
    return false;
  }

  private dropHanging(): void {
    for (const res of this.hanging) res.socket?.destroy();
    this.hanging.clear();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawUrl = req.url ?? '/';
    const queryAt = rawUrl.indexOf('?');
    const path = queryAt === -1 ? rawUrl : rawUrl.slice(0, queryAt);
    const query = new URLSearchParams(queryAt === -1 ? '' : rawUrl.slice(queryAt + 1));
    const method = req.method ?? 'GET';

    if (path.startsWith('/__admin/')) return this.admin(method, path, req, res);
    const arrivedAt = performance.now();

    let route: Route | undefined;
    let match: RegExpExecArray | null = null;
    for (const candidate of this.api.routes) {
      if (candidate.method !== method) continue;
      match = candidate.pattern.exec(path);
      if (match) {
        route = candidate;
        break;
      }
    }
    const routeName = route ? (route.nameFor?.(query) ?? route.name) : 'unmatched';
    const now = Date.now();
    const traceparent = req.headers.traceparent;
    const inSecond = this.stats.arrived(routeName, rawUrl, now, typeof traceparent === 'string' ? traceparent : undefined);
    const faults = this.faults.routes === null || this.faults.routes.includes(routeName) ? this.faults : NO_FAULTS;
    for (const name of faults.stripParams) query.delete(name);

    if (faults.down === 'reset') {
      this.stats.answered(routeName, 'reset');
      req.socket.destroy();
      return;
    }
    if (faults.down === 'hang') {
      this.stats.answered(routeName, 'hang');
      this.hanging.add(res);
      res.on('close', () => this.hanging.delete(res));
      return;
    }

    let body: unknown;
    let bodyBytes = 0;
    try {
      body = await readJsonBody(req, (n) => (bodyBytes = n));
    } catch {
      return this.send(res, routeName, json(400, { error: 'invalid_json' }));
    }
    // As a proxy in front of the vendor answers a request line, or a body, longer than it takes.
    if (faults.maxUrlBytes !== null && Buffer.byteLength(rawUrl) > faults.maxUrlBytes) return this.send(res, routeName, json(414, { error: 'uri_too_long' }));
    if (faults.maxBodyBytes !== null && bodyBytes > faults.maxBodyBytes) return this.send(res, routeName, json(413, { error: 'payload_too_large' }));

    if (faults.latencyMs > 0 || faults.jitterMs > 0) {
      const delay = Math.max(0, faults.latencyMs + (Math.random() * 2 - 1) * faults.jitterMs);
      await sleep(delay);
    }

    const limit = faults.rateLimitPerSec ?? NOMINAL_LIMIT;
    // The vendor's clock, not a route, is off: the profile's own `routes` do not narrow it.
    const skewMs = this.faults.clockSkewMs;
    const window: RateWindow = {
      limit,
      remaining: Math.max(0, limit - inSecond),
      resetSec: Math.floor((now + skewMs) / 1000) + 1,
      nowSec: Math.floor((now + skewMs) / 1000),
    };
    const request: UpstreamRequest = {
      method,
      path,
      query,
      headers: req.headers,
      params: [],
      body,
      origin: `http://${req.headers.host ?? `${this.host}:${this.port}`}`,
      recordBatch: (size) => this.stats.batch(routeName, size),
      pageCap: faults.maxPerPage,
      // The vendor's index, not a route, lags: the profile's own `routes` do not narrow it.
      searchLagMs: this.faults.searchLagMs,
      writeHoldMs: faults.writeHoldMs,
      readLagMs: faults.readLagMs,
      resultCap: faults.maxResults,
      ignoreSort: faults.ignoreSort,
      drift: (body) => (hasDrift(faults) ? applyDrift(body, faults) : body),
    };

    let reply: Reply;
    if (faults.rateLimitPerSec !== null && inSecond > faults.rateLimitPerSec) {
      reply = this.api.rateLimited(window);
    } else if (faults.errorRate > 0 && (faults.errorCount === null || this.injected < faults.errorCount) && Math.random() < faults.errorRate) {
      this.injected++;
      // An injected 429 speaks the API's own dialect (its Retry-After or x-ratelimit-* headers).
      reply =
        faults.errorStatus === 429
          ? this.api.rateLimited(window)
          : faults.errorBody === 'html'
            ? htmlError(faults.errorStatus)
            : json(faults.errorStatus, { error: 'injected_fault' });
    } else if (!route || !match) {
      reply = json(404, { error: 'not_found' });
    } else {
      try {
        request.params = match.slice(1).map((p) => decodeURIComponent(p));
      } catch {
        return this.send(res, routeName, json(400, { error: 'bad_path' }));
      }
      if (faults.answerFor !== null && method === 'GET' && request.params.length > 0) request.params[0] = faults.answerFor;
      reply = (!route.public && this.api.authenticate(request)) || (await route.handler(request));
      if (reply.status < 300 && hasDrift(faults)) reply = drifted(reply, faults);
      if (reply.status < 300 && faults.jumbleLists) reply = withJumbledLists(reply);
      if (reply.status < 300 && faults.malformedRate > 0 && Math.random() < faults.malformedRate) {
        reply = malformed(reply, faults.malformedKind);
      }
      if (reply.status < 300 && faults.padBodyBytes > 0) reply = { ...reply, padTo: faults.padBodyBytes };
      if (reply.status < 300 && faults.deepProperties > 0) reply = withDeepProperty(reply, faults.deepProperties);
      if (reply.status < 300 && faults.byteOrderMark) reply = { ...reply, bom: true };
      if (reply.status < 300 && faults.latin1) reply = { ...reply, latin1: true, headers: { ...reply.headers, 'content-type': 'application/json; charset=iso-8859-1' } };
      if (reply.status < 300 && faults.contentEncoding !== null) reply = { ...reply, encoding: faults.contentEncoding };
      if (reply.status < 300 && faults.down === 'stall') reply = { ...reply, stall: true };
      if (reply.status < 300 && faults.down === 'trickle') reply = { ...reply, trickle: true };
    }
    this.api.decorate?.(reply, window);
    if (skewMs !== 0) reply = { ...reply, headers: { ...reply.headers, date: new Date(Date.now() + skewMs).toUTCString() } };
    if (faults.retryAfterFraction && reply.status === 429 && /^\d+$/.test(reply.headers?.['retry-after'] ?? '')) {
      // Rounded up, so a client that waits what it says never comes before the reset.
      const left = Math.ceil((window.resetSec * 1000 - (now + skewMs)) / 100) / 10;
      reply = { ...reply, headers: { ...reply.headers, 'retry-after': left.toFixed(1) } };
    }
    if (Object.keys(faults.headers).length > 0) reply = { ...reply, headers: withHeaderFaults(reply.headers ?? {}, faults.headers) };
    if (reply.status === 429) this.stats.throttledUntil(routeName, rawUrl, Date.now(), window.resetSec * 1000 - skewMs);
    this.send(res, routeName, reply);
    this.stats.serviceTime(performance.now() - arrivedAt);
  }

  private send(res: ServerResponse, routeName: string, reply: Reply): void {
    this.stats.answered(routeName, reply.status);
    const json = reply.rawBody ?? (reply.body === undefined ? '' : JSON.stringify(reply.body));
    const text = reply.bom ? `\uFEFF${json}` : json;
    if (reply.latin1) {
      const bytes = Buffer.from(text, 'latin1');
      res.writeHead(reply.status, { ...reply.headers, 'content-length': bytes.length });
      res.end(bytes);
      return;
    }
    const length = Buffer.byteLength(text);
    const padding = Math.max(0, (reply.padTo ?? 0) - length);
    const headers: Record<string, string | number> = { ...reply.headers, 'content-length': length + padding };
    if (text !== '' && !('content-type' in headers)) headers['content-type'] = 'application/json; charset=utf-8';
    if (reply.stall) {
      res.writeHead(reply.status, headers);
      res.write(text.slice(0, Math.floor(text.length / 2)));
      this.hanging.add(res);
      res.on('close', () => this.hanging.delete(res));
      return;
    }
    if (reply.trickle) {
      res.writeHead(reply.status, headers);
      this.trickle(res, Buffer.from(text + ' '.repeat(padding)));
      return;
    }
    if (reply.encoding) {
      const compressed = compress(Buffer.from(padding === 0 ? text : text + ' '.repeat(padding)), reply.encoding);
      res.writeHead(reply.status, { ...headers, 'content-encoding': reply.encoding, 'content-length': compressed.length });
      res.end(compressed);
      return;
    }
    res.writeHead(reply.status, headers);
    if (padding === 0) {
      res.end(text);
      return;
    }
    res.write(text);
    void writePadding(res, padding);
  }

  private trickle(res: ServerResponse, body: Buffer): void {
    this.trickling.add(res);
    let sent = 0;
    const timer = setInterval(() => {
      if (sent < body.length) res.write(body.subarray(sent, ++sent));
      if (sent === body.length) {
        clearInterval(timer);
        res.end();
      }
    }, TRICKLE_EVERY_MS);
    res.on('close', () => {
      clearInterval(timer);
      this.trickling.delete(res);
    });
  }

  private async admin(method: string, path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const reply = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    /** The body, checked against its schema; undefined when it was refused (and answered 400). */
    const readAdminBody = async <T>(schema: z.ZodType<T>, refusal: string): Promise<T | undefined> => {
      let input: unknown;
      try {
        input = await readJsonBody(req);
      } catch {
        reply(400, { error: 'invalid_json' });
        return undefined;
      }
      const parsed = schema.safeParse(input ?? {});
      if (parsed.success) return parsed.data;
      reply(400, { error: refusal, issues: parsed.error.issues });
      return undefined;
    };
    if (path === '/__admin/faults') {
      if (method === 'GET') return reply(200, this.faults);
      if (method === 'DELETE') return reply(200, this.setFaults({}));
      if (method === 'POST') {
        const profile = await readAdminBody(faultProfileSchema, 'invalid_profile');
        if (!profile) return;
        // Answer before a `refuse` closes the connections, so the caller sees it took.
        reply(200, profile);
        this.setFaults(profile);
        return;
      }
    }
    if (path === '/__admin/stats') {
      if (method === 'GET') return reply(200, { name: this.api.name, ...this.stats.snapshot() });
      if (method === 'DELETE') {
        this.stats.reset();
        return reply(200, { reset: true });
      }
    }
    if (path === '/__admin/webhook' && this.api.webhooks) {
      if (method === 'GET') return reply(200, this.api.webhooks.snapshot());
      if (method === 'DELETE') {
        this.api.webhooks.configure(null);
        return reply(200, this.api.webhooks.snapshot());
      }
      if (method === 'POST') {
        const target = await readAdminBody(webhookTargetSchema, 'invalid_webhook');
        if (!target) return;
        this.api.webhooks.configure(target);
        return reply(200, this.api.webhooks.snapshot());
      }
    }
    for (const route of this.api.adminRoutes ?? []) {
      const match = route.method === method ? route.pattern.exec(path) : null;
      if (!match) continue;
      let body: unknown;
      try {
        body = await readJsonBody(req);
      } catch {
        return reply(400, { error: 'invalid_json' });
      }
      const answer = await route.handler({
        method,
        path,
        query: new URLSearchParams(),
        headers: req.headers,
        params: match.slice(1).map((p) => decodeURIComponent(p)),
        body,
        origin: `http://${req.headers.host ?? `${this.host}:${this.port}`}`,
        recordBatch: () => undefined,
        pageCap: null,
        searchLagMs: this.faults.searchLagMs,
        writeHoldMs: 0,
        readLagMs: 0,
        resultCap: null,
        ignoreSort: false,
        drift: (body) => body,
      });
      return reply(answer.status, answer.body);
    }
    if (path === '/__admin/reset' && method === 'POST') {
      this.setFaults({});
      this.stats.reset();
      return reply(200, { reset: true });
    }
    reply(404, { error: 'unknown_admin_route' });
  }
}

async function readJsonBody(req: IncomingMessage, onSize: (bytes: number) => void = () => undefined): Promise<unknown> {
  if (req.method === 'GET' || req.method === 'HEAD') {
    req.resume();
    return undefined;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new Error('body too large');
    chunks.push(chunk as Buffer);
  }
  onSize(size);
  if (size === 0) return undefined;
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

const SPACES = Buffer.alloc(64 * 1024, ' ');

function compress(body: Buffer, encoding: 'gzip' | 'deflate' | 'br'): Buffer {
  if (encoding === 'gzip') return gzipSync(body);
  return encoding === 'deflate' ? deflateSync(body) : brotliCompressSync(body);
}

/** Streams `bytes` of whitespace, as fast as the client reads; stops when the client hangs up (as a gateway refusing the size does). */
async function writePadding(res: ServerResponse, bytes: number): Promise<void> {
  for (let left = bytes; left > 0; left -= SPACES.length) {
    if (res.destroyed) return;
    const chunk = left >= SPACES.length ? SPACES : SPACES.subarray(0, left);
    if (!res.write(chunk)) await drainedOrClosed(res);
  }
  res.end();
}

function drainedOrClosed(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** The `headers` fault: each named header replaced, or dropped when null (names compared without case). */
function withHeaderFaults(headers: Record<string, string>, faults: Record<string, string | null>): Record<string, string> {
  const out = Object.fromEntries(Object.entries(headers).filter(([name]) => !(name.toLowerCase() in faults)));
  for (const [name, value] of Object.entries(faults)) if (value !== null) out[name] = value;
  return out;
}

/** A successful answer with `transform` applied to its JSON body (a stored one, an idempotent replay kept as its text, included); one that is not JSON, as it is. */
function withJsonBody(reply: Reply, transform: (body: unknown) => unknown): Reply {
  if (reply.rawBody === undefined) return reply.body === undefined ? reply : { ...reply, body: transform(reply.body) };
  let body: unknown;
  try {
    body = JSON.parse(reply.rawBody);
  } catch {
    return reply;
  }
  return { ...reply, body: transform(body), rawBody: undefined };
}

/** The `deepProperties` fault: the first item of `data` with `properties` gets one nested `depth` deep (written as text: JSON.stringify cannot). */
function withDeepProperty(reply: Reply, depth: number): Reply {
  const MARK = '__deep_property__';
  let marked = false;
  const withMark = withJsonBody(reply, (body) => {
    const data = (body as { data?: unknown }).data;
    const item: unknown = Array.isArray(data) ? data[0] : undefined;
    if (typeof item !== 'object' || item === null || !('properties' in item)) return body;
    marked = true;
    // Copies: the items are the dataset's own.
    return { ...(body as object), data: [{ ...item, properties: { nested: MARK } }, ...(data as unknown[]).slice(1)] };
  });
  if (!marked) return reply;
  const text = JSON.stringify(withMark.body).replace(JSON.stringify(MARK), `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`);
  return { ...withMark, body: undefined, rawBody: text };
}

/** The drift faults applied to a successful answer. */
function drifted(reply: Reply, faults: FaultProfile): Reply {
  return withJsonBody(reply, (body) => applyDrift(body, faults));
}

/** The `jumbleLists` fault: every array of objects, at any depth, reversed and its first row repeated at the end. */
function withJumbledLists(reply: Reply): Reply {
  const isRow = (item: unknown) => typeof item === 'object' && item !== null && !Array.isArray(item);
  const jumble = (value: unknown): unknown => {
    if (Array.isArray(value)) {
      const items = value.map(jumble);
      return items.length > 0 && value.every(isRow) ? [...items].reverse().concat([items[0]]) : items;
    }
    return isRow(value) ? Object.fromEntries(Object.entries(value as object).map(([key, v]) => [key, jumble(v)])) : value;
  };
  return withJsonBody(reply, jumble);
}

function htmlError(status: number): Reply {
  const page = `<!DOCTYPE html>\n<html><head><title>${status} Error</title></head><body><h1>${status} Error</h1><p>The upstream server is temporarily unable to service your request.</p><hr><address>nginx</address></body></html>\n`;
  return { status, rawBody: page, headers: { 'content-type': 'text/html; charset=utf-8' } };
}

function malformed(reply: Reply, kind: 'syntax' | 'shape'): Reply {
  if (kind === 'shape') return { ...reply, body: { malformed: true }, rawBody: undefined };
  const text = reply.rawBody ?? JSON.stringify(reply.body ?? {});
  return { ...reply, rawBody: text.slice(0, Math.max(1, Math.floor(text.length / 2))) };
}
