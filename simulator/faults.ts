import { z } from 'zod';

/**
 * A fault profile for one simulated upstream, set at start or through
 * `POST /__admin/faults`. Every field is optional; what is not given is off.
 */
export const faultProfileSchema = z
  .object({
    /** Added to every response, in ms. */
    latencyMs: z.number().int().min(0).max(120_000).default(0),
    /** Uniform ± jitter around latencyMs, in ms. */
    jitterMs: z.number().int().min(0).max(60_000).default(0),
    /** Share of requests (0..1) answered with errorStatus instead (a 429 in the API's own dialect). */
    errorRate: z.number().min(0).max(1).default(0),
    errorStatus: z.number().int().min(400).max(599).default(503),
    /** At most this many injected errors from when the profile is set, then none (a blip: "the next request fails"). */
    errorCount: z.number().int().min(1).nullable().default(null),
    /**
     * Hard down. `refuse`: the listener closes and open connections are dropped,
     * so connects are refused, for `downForMs` (the admin endpoint is unreachable
     * meanwhile; it listens again afterwards). `reset`: every request's connection
     * is destroyed. `hang`: requests are read and never answered. `stall`: a
     * success's status, headers and first half of its body are sent, then
     * nothing more on an open connection (a vendor or proxy dying mid-body).
     * `trickle`: a success's status and headers at once, then its body a byte
     * every 100 ms (a proxy dribbling a response, slowloris in reverse): no
     * gap between bytes is long, the whole is. A trickle goes on to its end
     * when the faults change; only closing the simulator stops it.
     */
    down: z.enum(['refuse', 'reset', 'hang', 'stall', 'trickle']).nullable().default(null),
    downForMs: z.number().int().min(1).max(600_000).default(10_000),
    /** Requests per second (fixed one-second windows) before the API's own 429. */
    rateLimitPerSec: z.number().int().min(1).nullable().default(null),
    /** Share of successful responses (0..1) whose body is replaced by a malformed one. */
    malformedRate: z.number().min(0).max(1).default(0),
    /** `syntax`: truncated JSON. `shape`: valid JSON of the wrong shape. */
    malformedKind: z.enum(['syntax', 'shape']).default('syntax'),
    /**
     * Successful JSON bodies padded with whitespace to at least this many bytes,
     * streamed: still valid JSON, as large as a runaway export or a vendor bug
     * makes them. 0: off.
     */
    padBodyBytes: z
      .number()
      .int()
      .min(0)
      .max(1024 * 1024 * 1024)
      .default(0),
    /** How an injected error status is answered: the API's own JSON, or an HTML page as a proxy or load balancer in front of it sends. */
    errorBody: z.enum(['json', 'html']).default('json'),
    /**
     * Drift, as vendors ship it without notice. `extraFields`: an unknown field
     * (whose value is an object) added to every object of a successful JSON body,
     * maps keyed by id included; `renameFields`: old name → new name wherever the
     * field appears; `retypeFields`: these fields change JSON type wherever they
     * appear (a string becomes a number, anything else a string).
     */
    extraFields: z.boolean().default(false),
    /**
     * Lists in another order, one row twice: every array of objects in a
     * successful JSON body, at any depth (a bulk answer's rows and each row's
     * series, a page's items), comes reversed, its first row repeated at the
     * end. The contract promises no order for bulk rows or series points; a
     * vendor's replica or retry may repeat one.
     */
    jumbleLists: z.boolean().default(false),
    /**
     * GET routes with a user in their path (its first parameter) answer for
     * this user instead: a cache in front of the vendor keyed without the
     * path, or the vendor's own bug. Another user's data under the one asked.
     */
    answerFor: z.string().min(1).nullable().default(null),
    renameFields: z.record(z.string().min(1), z.string().min(1)).default({}),
    /** Fields given this value wherever they appear, its type kept: a count past 2^31, a negative one, an empty id. */
    setFields: z.record(z.string().min(1), z.unknown()).default({}),
    retypeFields: z.array(z.string().min(1)).default([]),
    /** Requests whose path and query are longer than this many bytes are answered 414, as a proxy or vendor with a tighter URL limit does. */
    maxUrlBytes: z.number().int().min(1).nullable().default(null),
    /** Requests whose body is longer than this many bytes are answered 413, as a proxy or vendor with a tighter body limit does. */
    maxBodyBytes: z.number().int().min(1).nullable().default(null),
    /** Successful bodies start with a UTF-8 byte order mark, as some vendors' frameworks write it (RFC 8259 §8.1 lets a parser ignore it). */
    byteOrderMark: z.boolean().default(false),
    /**
     * Successful bodies encoded in ISO-8859-1 and labelled so
     * (`charset=iso-8859-1`), as some older APIs send JSON: an accented letter
     * is one byte, not UTF-8's two.
     */
    latin1: z.boolean().default(false),
    /**
     * Analytics' events: the first event of each page carries a property
     * nested this many levels deep. Event properties are whatever a client
     * SDK sent, so an end user can put anything there; 0 is off.
     */
    deepProperties: z.number().int().min(0).max(1_000_000).default(0),
    /** Successful bodies compressed this way and sent with Content-Encoding, though the client never asked (as CDNs and some vendors do). */
    contentEncoding: z.enum(['gzip', 'deflate', 'br']).nullable().default(null),
    /**
     * Query parameters removed before the API reads them, so it answers as if
     * they were never sent (a proxy that strips them, a parameter renamed):
     * `["unread"]` makes notifications' unread-only list every notification;
     * `["per_page"]` makes a list page by its default (identity 50,
     * notifications 30) whatever was asked; `["page"]` answers every page
     * with the first; `["include_totals"]` makes identity answer its lists
     * as a bare array of users (Auth0's form without it).
     */
    stripParams: z.array(z.string().min(1)).default([]),
    /**
     * Lists hold at most this many items a page, whatever `per_page` asks, as a vendor with a tighter cap does:
     * identity's users (its `limit` says so) and notifications' (only the page's length and its Link's rel="next" tell).
     */
    maxPerPage: z.number().int().min(1).nullable().default(null),
    /**
     * Identity only: a change made while this is set reaches its search (the
     * list, `q=user_id:…` and `q=updated_at:…`) this many ms after it is made,
     * as Auth0's eventually consistent search index does; until then the search
     * shows the user as before. `GET /api/v2/users/{id}` shows it at once. Set
     * it, change one user, clear it, change another: the second change is listed
     * first, and the first later, under its own earlier `updated_at`.
     */
    searchLagMs: z.number().int().min(0).max(600_000).default(0),
    /**
     * Identity only: its lists page through at most this many results, as
     * Auth0's do (1,000): a page reaching past them is a 400.
     */
    maxResults: z.number().int().min(1).nullable().default(null),
    /**
     * Identity only: its lists ignore `sort` and come in creation order, as a
     * vendor whose search drops a parameter it does not know (or a proxy that
     * strips it) does. The changed-users list is then not oldest change first.
     */
    ignoreSort: z.boolean().default(false),
    /**
     * Writes with an Idempotency-Key (notifications' and audit's POSTs) hold
     * their key this many ms before they are written, as a vendor still
     * processing them does; the same key meanwhile is answered 409
     * `idempotency_key_in_use` (the IETF Idempotency-Key draft; Stripe).
     */
    writeHoldMs: z.number().int().min(0).max(120_000).default(0),
    /**
     * Notifications only: a notification created while this is set shows in
     * the API's lists and unread counts this many ms later, while its webhook
     * goes at once, as a vendor whose reads come from a replica behind its
     * writes does.
     */
    readLagMs: z.number().int().min(0).max(600_000).default(0),
    /**
     * The vendor's clock runs this many ms ahead of ours (behind, when
     * negative): its Date header and the instants its rate-limit headers name
     * (identity's x-ratelimit-reset, notifications' Retry-After HTTP-date) are
     * on that clock. Delta seconds (analytics', audit's Retry-After) are not.
     */
    clockSkewMs: z.number().int().min(-86_400_000).max(86_400_000).default(0),
    /**
     * A 429's delta-seconds Retry-After (analytics', audit's) says the time
     * left in the window to a tenth of a second ("0.4", "1.0"), as vendors
     * that count in ms write it (Shopify's REST API sends "2.0"). RFC 9110
     * has whole seconds only.
     */
    retryAfterFraction: z.boolean().default(false),
    /**
     * Response headers replaced (a string) or dropped (null) on every answer,
     * after the API has set its own: `{"link": "<broken", "x-total-count": null}`.
     * Header names are lower case.
     */
    headers: z.record(z.string().regex(/^[a-z0-9-]+$/, 'a lower-case header name'), z.string().nullable()).default({}),
    /**
     * A connection idle this long after an answer is closed by the vendor,
     * with no `Keep-Alive: timeout` header saying so, as gunicorn (2 s),
     * HAProxy's `timeout http-keep-alive` and most load balancers do. A
     * client that keeps idle connections longer now and then sends a request
     * just as the vendor closes one, and gets a reset with no answer: here
     * every time, for determinism. The close is played when the next request
     * arrives on it (reset, not answered, not counted in the routes' calls;
     * `idleClosed` in stats), counting from the first answer after it is set. Every route, whatever `routes` says: it is the
     * connection's. Null: the simulator's usual keep-alive (65 s, advertised).
     */
    idleCloseMs: z.number().int().min(1).max(600_000).nullable().default(null),
    /**
     * Every answer says `Connection: close` and its connection is closed after it, as HTTP/1.0-era servers, some
     * proxies and overloaded load balancers do: each call opens a new connection (and, over TLS, a new handshake).
     * `connections` in stats counts those opened. Every route, as `idleCloseMs`.
     */
    closeEachConnection: z.boolean().default(false),
    /** Only these routes (as named in stats, e.g. "GET /v1/unread-counts") get the faults; all when absent. */
    routes: z.array(z.string()).nullable().default(null),
  })
  .strict();

export type FaultProfile = z.infer<typeof faultProfileSchema>;
export type FaultProfileInput = z.input<typeof faultProfileSchema>;

export const NO_FAULTS: FaultProfile = faultProfileSchema.parse({});
