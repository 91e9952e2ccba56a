import type { IBackoff, IBackoffFactory, IRetryBackoffContext } from 'cockatiel';
import { SourceError } from '../errors.js';

/**
 * Exponential backoff with full jitter (a random wait in [0, min(max, base·2^n)]),
 * unless the upstream said how long to wait (Retry-After, x-ratelimit-reset):
 * then exactly that, and for a 429 nothing here: the rate limiter pauses the
 * whole source until then. The policy has already refused to retry when that wait
 * does not fit the request's deadline, so here it only has to be honoured.
 */
export class RetryAfterBackoff implements IBackoffFactory<IRetryBackoffContext<unknown>> {
  constructor(
    private readonly baseMs: number,
    private readonly maxMs: number,
    /** Remaining deadline for the call being retried; the jittered wait is capped to half of it. */
    private readonly remainingMs: (signal: AbortSignal) => number,
  ) {}

  next(context: IRetryBackoffContext<unknown>): IBackoff<IRetryBackoffContext<unknown>> {
    const error = 'error' in context.result ? context.result.error : undefined;
    let duration: number;
    if (error instanceof SourceError && error.code === 'SOURCE_RATE_LIMITED') {
      // The source's limiter already holds every call to this vendor until the moment it named.
      duration = 0;
    } else if (error instanceof SourceError && error.retryAfterMs !== undefined) {
      duration = error.retryAfterMs;
    } else {
      const ceiling = Math.min(this.maxMs, this.baseMs * 2 ** Math.max(0, context.attempt - 1));
      duration = Math.min(Math.random() * ceiling, this.remainingMs(context.signal) / 2);
    }
    return { duration, next: (c) => this.next(c) };
  }
}
