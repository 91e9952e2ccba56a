import type { ServerResponse } from 'node:http';

/**
 * Cuts event streams (SSE) whose client stopped taking data. A subscription
 * that fell behind is ended (SubscriberQueue), but its connection, and what
 * was buffered for it, stayed open until TCP gave up on the client (about
 * 15 minutes). A socket timeout cannot say so: @whatwg-node/server turns the
 * socket's timeout off for a streamed body, and an idle stream is quiet too.
 *
 * One timer for every stream, every `cutMs`: a stream with data waiting whose
 * socket completed no write since the last look is cut. The bytes completed
 * are what the socket was given minus what it still holds; an idle stream has
 * nothing waiting, and a slow client completes a write now and then.
 */
export class StalledStreams {
  /** Each watched response, with the bytes its socket had completed at the last look. */
  private readonly watched = new Map<ServerResponse, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly cutMs: number,
    private readonly onCut: (stalledMs: number) => void,
  ) {}

  watch(res: ServerResponse): void {
    this.watched.set(res, completedBytes(res));
    res.once('close', this.forget.bind(this, res));
    this.timer ??= setInterval(this.look.bind(this), this.cutMs).unref();
  }

  private forget(res: ServerResponse): void {
    this.watched.delete(res);
    if (this.watched.size === 0) this.stop();
  }

  private look(): void {
    for (const [res, before] of this.watched) {
      const now = completedBytes(res);
      this.watched.set(res, now);
      if (now !== before || (res.socket?.writableLength ?? 0) === 0) continue;
      this.watched.delete(res);
      this.onCut(this.cutMs);
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
