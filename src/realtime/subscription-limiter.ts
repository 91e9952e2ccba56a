/**
 * At most `perCaller` live subscriptions per caller (token subject) on this
 * instance, over SSE and WebSocket together: each holds a connection and a
 * live-event listener, so an unbounded number is a way to exhaust the server.
 * Likewise the events one subscriber may leave unread (`heldEventsMax`).
 */
export class SubscriptionLimiter {
  private readonly active = new Map<string, number>();

  constructor(
    readonly perCaller: number,
    readonly heldEventsMax: number,
  ) {}

  /** A release function, or null when the caller is at its limit. */
  enter(caller: string): (() => void) | null {
    const n = this.active.get(caller) ?? 0;
    if (n >= this.perCaller) return null;
    this.active.set(caller, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.active.get(caller) ?? 1) - 1;
      if (left <= 0) this.active.delete(caller);
      else this.active.set(caller, left);
    };
  }
}
