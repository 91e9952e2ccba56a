import { subscribe } from 'node:diagnostics_channel';
import type { Socket } from 'node:net';

/**
 * A pooled keep-alive connection the vendor closed while it sat idle, met by
 * the next call sent on it: the race every HTTP client loses now and then
 * against a server (or a load balancer in front of it) whose idle timeout is
 * shorter than the client's and not said in a `Keep-Alive` header, as
 * gunicorn's 2 s, HAProxy's `timeout http-keep-alive` and nginx's
 * `keepalive_timeout` are. The call fails with a reset before any answer, and
 * the vendor never saw it. Browsers, Go's net/http and Node's own http module
 * (`request.reusedSocket`) send such a call again on another connection at
 * once; undici does not (nodejs/undici#3492), so this tells which failures
 * are that race, from undici's diagnostics channels.
 *
 * Only a connection that had been idle at least IDLE_BEFORE_CLOSE_MS counts:
 * servers' idle timeouts are seconds, and a reset on a connection answered a
 * moment ago is the vendor's own (a crash, a proxy dropping it), which the
 * source's policy retries with backoff and counts as a failure.
 */
export const IDLE_BEFORE_CLOSE_MS = 1000;

/** The connection each request was sent on, and when each connection last finished an answer (performance.now()). */
const connectionOf = new WeakMap<object, Socket>();
const answeredAt = new WeakMap<Socket, number>();
/** Requests sent on a connection idle at least IDLE_BEFORE_CLOSE_MS, and the errors such requests failed with. */
const sentAfterIdle = new WeakSet<object>();
const metClosedIdle = new WeakSet<object>();

subscribe('undici:client:sendHeaders', (message) => {
  const { request, socket } = message as { request: object; socket: Socket };
  connectionOf.set(request, socket);
  const at = answeredAt.get(socket);
  if (at !== undefined && performance.now() - at >= IDLE_BEFORE_CLOSE_MS) sentAfterIdle.add(request);
});

subscribe('undici:request:trailers', (message) => {
  const socket = connectionOf.get((message as { request: object }).request);
  if (socket) answeredAt.set(socket, performance.now());
});

subscribe('undici:request:error', (message) => {
  const { request, error } = message as { request: object; error: unknown };
  if (sentAfterIdle.has(request) && typeof error === 'object' && error !== null) metClosedIdle.add(error);
});

/** Whether a request's failure is that race: sent on a connection idle for a while, failed before any answer came. */
export function metClosedIdleConnection(error: unknown): boolean {
  return typeof error === 'object' && error !== null && metClosedIdle.has(error);
}
