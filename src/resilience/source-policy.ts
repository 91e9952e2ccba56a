import {
  BrokenCircuitError,
  BulkheadRejectedError,
  bulkhead,
  circuitBreaker,
  handleWhen,
  retry,
  CircuitState,
  type BulkheadPolicy,
  type CircuitBreakerPolicy,
  type RetryPolicy,
} from 'cockatiel';
import type { SourceTuning } from '../config-types.js';
import { acceptedButUnread, SourceError, type SourceName } from '../errors.js';
import { RetryAfterBackoff } from './backoff.js';
import { halfOpenAfter, SamplingBreaker } from '../monotonic-breaker.js';
import type { Deadline } from './deadline.js';
import type { SourceRateLimiter } from './rate-limiter.js';

export type BreakerState = 'CLOSED' | 'OPEN' | 'HALF_OPEN';

/**
 * A retry starts only while more than this is left of the request's deadline:
 * less could not cover a round trip to a vendor over the internet, and would
 * only turn the last real error into a timeout.
 */
export const MIN_ATTEMPT_MS = 250;

/**
 * Whether a failure says the upstream is unhealthy (counts toward opening the
 * breaker): connection trouble, 5xx, timeouts, garbage bodies. Not: 404s and
 * other client errors, 429s (the rate limiter's business), rejected
 * credentials, nor anything our own policies produced.
 */
export function countsAsFailure(error: unknown): boolean {
  if (!(error instanceof SourceError) || error.local) return false;
  if (error.code === 'SOURCE_TIMEOUT') return true;
  // A 4xx (a keyed write's 409: the vendor still processing it) is the vendor answering, not failing.
  // A connection cut while a 2xx body arrived carries that 2xx: trouble all the same.
  if (error.code === 'SOURCE_UNAVAILABLE') return error.status === undefined || error.status >= 500 || error.status < 300;
  return error.code === 'SOURCE_BAD_RESPONSE' && (error.status === undefined || error.status < 300);
}

/**
 * A source's resilience, built once from its config: retry (transient upstream
 * failures only, exponential backoff with full jitter, Retry-After honoured
 * when it fits the deadline) around a sampling circuit breaker around a
 * bulkhead around the rate limiter and the call. Writes without an idempotency key
 * skip the retry. Observers subscribe to the cockatiel events exposed here.
 */
export class SourcePolicy {
  readonly breaker: CircuitBreakerPolicy;
  readonly retry: RetryPolicy;
  readonly bulkhead: BulkheadPolicy;
  private openedAt = 0;
  /** Errors that may not be retried now: their Retry-After does not fit the deadline. */
  private readonly final = new WeakSet<SourceError>();
  private readonly deadlines = new WeakMap<AbortSignal, Deadline>();

  constructor(
    readonly source: SourceName,
    private readonly tuning: SourceTuning,
    readonly limiter: SourceRateLimiter,
  ) {
    this.breaker = circuitBreaker(handleWhen(countsAsFailure), {
      halfOpenAfter: halfOpenAfter(tuning.breakerHalfOpenAfterMs),
      breaker: new SamplingBreaker({ failureRatio: tuning.breakerFailureRatio, windowMs: tuning.breakerWindowMs, minCalls: tuning.breakerMinCalls }),
    });
    this.breaker.onBreak(() => {
      this.openedAt = performance.now();
    });
    this.retry = retry(
      handleWhen((e) => e instanceof SourceError && e.retryable && !e.local && !this.final.has(e)),
      {
        maxAttempts: tuning.retryMaxAttempts - 1,
        backoff: new RetryAfterBackoff(tuning.retryBaseDelayMs, tuning.retryMaxDelayMs, (signal) => this.deadlines.get(signal)?.remainingMs() ?? 0),
      },
    );
    this.bulkhead = bulkhead(tuning.bulkheadLimit, tuning.bulkheadQueue);
  }

  get state(): BreakerState {
    switch (this.breaker.state) {
      case CircuitState.Open:
      case CircuitState.Isolated:
        return 'OPEN';
      case CircuitState.HalfOpen:
        return 'HALF_OPEN';
      default:
        return 'CLOSED';
    }
  }

  /**
   * Runs one logical upstream call. `attempt` makes one HTTP exchange with the
   * signal it is given and throws a SourceError on failure.
   *
   * Written with promise chains, not async functions: every suspended async
   * function is a generator, its frame and two resolve closures held for the
   * whole vendor call, and at 50 connections what a request in flight holds is
   * what each scavenge copies (bench/RESULTS.md, sessions 26 and 27).
   */
  execute<T>(deadline: Deadline, idempotent: boolean, attempt: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const calls = !idempotent || this.tuning.retryMaxAttempts <= 1 ? this.once(deadline, deadline.signal, attempt) : this.withRetries(deadline, attempt);
    return calls.catch((error: unknown) => {
      throw this.translate(error, deadline);
    });
  }

  /** One attempt through the breaker and the bulkhead. The bulkhead slot is taken before the token, so a call leaves as soon as its token is due. */
  private once<T>(deadline: Deadline, signal: AbortSignal, attempt: (signal: AbortSignal) => Promise<T>): Promise<T> {
    return this.breaker.execute(
      () =>
        this.bulkhead.execute(() => {
          const wait = this.limiter.acquire(deadline);
          return wait instanceof Promise ? wait.then(() => attempt(signal)) : attempt(signal);
        }, signal),
      signal,
    );
  }

  private withRetries<T>(deadline: Deadline, attempt: (signal: AbortSignal) => Promise<T>): Promise<T> {
    this.deadlines.set(deadline.signal, deadline);
    let last: SourceError | undefined;
    // An attempt answered 2xx whose body did not arrive: a write it carried was taken, whatever the later attempts meet.
    let taken: SourceError | undefined;
    const remember = (error: unknown): never => {
      if (acceptedButUnread(error)) taken ??= error;
      else if (taken && error instanceof SourceError) {
        error = new SourceError({
          code: error.code,
          source: error.source,
          retryable: error.retryable,
          local: error.local,
          status: taken.status,
          detail: `${error.detail} (an attempt before was answered ${taken.status}: ${taken.detail})`,
          cause: error,
        });
      }
      if (error instanceof SourceError && error.retryable && !error.local) {
        last = error;
        const wait = error.retryAfterMs ?? 0;
        if (wait + MIN_ATTEMPT_MS > deadline.remainingMs()) this.final.add(error);
      } else if (last && error instanceof SourceError && error.local && error.code === 'SOURCE_TIMEOUT') {
        // The deadline cut the last attempt: the operator's line also says what the attempts before it ran into.
        throw new SourceError({
          code: error.code,
          source: error.source,
          retryable: error.retryable,
          local: true,
          status: error.status,
          detail: `${error.detail} (the attempt before: ${last.detail})`,
          cause: error,
        });
      }
      throw error;
    };
    return this.retry.execute(({ signal }) => {
      // The backoff may have used what was left: then the last real error is the answer.
      if (last && deadline.remainingMs() < MIN_ATTEMPT_MS) {
        this.final.add(last);
        throw last;
      }
      return this.once(deadline, signal, attempt).catch(remember);
    }, deadline.signal);
  }

  private translate(error: unknown, deadline: Deadline): unknown {
    if (error instanceof SourceError) return error;
    if (error instanceof BrokenCircuitError) {
      const untilHalfOpen = this.openedAt + this.tuning.breakerHalfOpenAfterMs - performance.now();
      return new SourceError({
        code: 'SOURCE_CIRCUIT_OPEN',
        source: this.source,
        retryable: true,
        local: true,
        retryAfterSeconds: Math.max(1, Math.ceil(untilHalfOpen / 1000)),
        detail: 'circuit open',
      });
    }
    if (error instanceof BulkheadRejectedError) {
      return new SourceError({ code: 'SOURCE_UNAVAILABLE', source: this.source, retryable: true, local: true, detail: 'bulkhead full: too many concurrent calls' });
    }
    if (deadline.expired) {
      return new SourceError({ code: 'SOURCE_TIMEOUT', source: this.source, retryable: true, local: true, detail: 'request deadline passed', cause: error });
    }
    return new SourceError({ code: 'SOURCE_UNAVAILABLE', source: this.source, retryable: true, local: true, detail: 'unexpected failure', cause: error });
  }
}
