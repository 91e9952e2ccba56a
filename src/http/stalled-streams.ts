import type { ServerResponse } from 'node:http';

/**
 * Cuts event streams (SSE) whose client stopped taking data. A subscription
 * that fell behind is ended (SubscriberQueue), but its connection, and what
 * was buffered for it, stayed open until TCP gave up on the client (about
 * 15 minutes). A socket timeout cannot say so: @whatwg-node/server turns the
 * socket's timeout off for a streamed body, and an idle stream is quiet too.
 *
 * One timer for every stream, looking four times per `cutMs`: a stream whose
 * socket has had data waiting and completed no write for `cutMs` is cut. The
 * bytes completed are what the socket was given minus what it still holds; an
 * idle stream has nothing waiting, and a slow client completes a write now
 * and then.
 */
export class StalledStreams {
  /** Each watched response: the bytes its socket had completed, and since when it has not moved with data waiting. */
  private readonly watched = new Map<ServerResponse, { bytes: number; since: number }>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly cutMs: number,
    private readonly onCut: (stalledMs: number) => void,
  ) {}

  watch(res: ServerResponse): void {
    this.watched.set(res, { bytes: completedBytes(res), since: performance.now() });
    res.once('close', this.forget.bind(this, res));
    this.timer ??= setInterval(this.look.bind(this), Math.max(100, this.cutMs / 4)).unref();
  }

  private forget(res: ServerResponse): void {
    this.watched.delete(res);
    if (this.watched.size === 0) this.stop();
  }

  private look(): void {
    const now = performance.now();
    for (const [res, seen] of this.watched) {
      const bytes = completedBytes(res);
      if (bytes !== seen.bytes || (res.socket?.writableLength ?? 0) === 0) {
        seen.bytes = bytes;
        seen.since = now;
        continue;
      }
      if (now - seen.since < this.cutMs) continue;
      this.watched.delete(res);
      this.onCut(Math.round(now - seen.since));
      res.destroy();
    }
    if (this.watched.size === 0) this.stop();
  }

  private stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** The bytes a response's socket handed to the kernel in full: given to it, less what it still holds. */
function completedBytes(res: ServerResponse): number {
  const socket = res.socket;
  return socket ? socket.bytesWritten - socket.writableLength : 0;
}
