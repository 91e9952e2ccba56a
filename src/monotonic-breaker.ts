import { CircuitState, type IBackoff, type IBackoffFactory, type IBreaker } from 'cockatiel';

/**
 * cockatiel's circuit breaker, timed on the monotonic clock. cockatiel reads `Date.now()` for both its clocks: how
 * long a breaker stays open, and its SamplingBreaker's windows. A wall clock stepped back an hour (NTP correcting a
 * clock that ran ahead, a VM restored) left an open breaker refusing every call for that hour, and a closed one
 * counting the whole hour as one window, so a vendor going down in it never opened the breaker. These replace the
 * two parts that read the clock; the policy (states, half-open probe, events) stays cockatiel's.
 */

export interface SamplingOptions {
  /** The breaker opens when more than this share of the window's calls failed (1: when every call did). */
  failureRatio: number;
  /** The window the share is taken over. */
  windowMs: number;
  /** Calls needed in the window before it can open. */
  minCalls: number;
}

/**
 * cockatiel's SamplingBreaker (a window of at least five slices of at most a second each, rolled as time passes), with
 * two differences besides the clock: a ratio of 1 opens when every call in the window failed (cockatiel refuses it
 * with a RangeError), and slices older than the window are all dropped after a silence, not one a call.
 */
export class SamplingBreaker implements IBreaker {
  private readonly sliceMs: number;
  private readonly failures: number[];
  private readonly successes: number[];
  private current = 0;
  private currentStartedAt: number;
  private failed = 0;
  private succeeded = 0;

  constructor(
    private readonly options: SamplingOptions,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(options.failureRatio > 0 && options.failureRatio <= 1)) throw new RangeError(`failureRatio must be in (0, 1], got ${options.failureRatio}`);
    const slices = Math.max(5, Math.ceil(options.windowMs / 1000));
    this.sliceMs = options.windowMs / slices;
    this.failures = new Array<number>(slices).fill(0);
    this.successes = new Array<number>(slices).fill(0);
    this.currentStartedAt = now();
  }

  /** Counts, for cockatiel's toJSON; read back in the same process only (the clock's origin is the process's). */
  get state(): unknown {
    return { failures: [...this.failures], successes: [...this.successes], current: this.current, currentStartedAt: this.currentStartedAt };
  }

  set state(value: unknown) {
    const saved = value as { failures: number[]; successes: number[]; current: number; currentStartedAt: number };
    this.failures.splice(0, this.failures.length, ...saved.failures);
    this.successes.splice(0, this.successes.length, ...saved.successes);
    this.current = saved.current;
    this.currentStartedAt = saved.currentStartedAt;
    this.failed = this.failures.reduce((a, b) => a + b, 0);
    this.succeeded = this.successes.reduce((a, b) => a + b, 0);
  }

  success(state: CircuitState): void {
    // The half-open probe answered: what failed before it is over.
    if (state === CircuitState.HalfOpen) this.reset();
    this.roll();
    this.successes[this.current]!++;
    this.succeeded++;
  }

  failure(state: CircuitState): boolean {
    this.roll();
    this.failures[this.current]!++;
    this.failed++;
    if (state !== CircuitState.Closed) return true;
    const total = this.failed + this.succeeded;
    if (total < this.options.minCalls) return false;
    return this.failed > this.options.failureRatio * total || this.failed === total;
  }

  /** Moves the current slice up to now, emptying each slice it passes (all of them after a window's silence). */
  private roll(): void {
    const passed = Math.floor((this.now() - this.currentStartedAt) / this.sliceMs);
    if (passed <= 0) return;
    const slices = this.failures.length;
    for (let i = 0; i < Math.min(passed, slices); i++) {
      this.current = (this.current + 1) % slices;
      this.failed -= this.failures[this.current]!;
      this.succeeded -= this.successes[this.current]!;
      this.failures[this.current] = 0;
      this.successes[this.current] = 0;
    }
    this.currentStartedAt += passed * this.sliceMs;
  }

  private reset(): void {
    this.failures.fill(0);
    this.successes.fill(0);
    this.failed = 0;
    this.succeeded = 0;
  }
}

/**
 * The breaker's `halfOpenAfter`: open for `ms` of monotonic time. cockatiel decides with
 * `Date.now() - openedAt < backoff.duration`, reading `duration` at each call, with `openedAt` taken just after
 * `next()`; this duration adds whatever the wall clock moved beyond the monotonic one since, so the comparison holds
 * exactly while less than `ms` has passed.
 */
export function halfOpenAfter(ms: number): IBackoffFactory<unknown> {
  return { next: () => new OpenFor(ms) };
}

class OpenFor implements IBackoff<unknown> {
  private readonly wallAtOpen = Date.now();
  private readonly monotonicAtOpen = performance.now();

  constructor(private readonly ms: number) {}

  get duration(): number {
    return Date.now() - this.wallAtOpen - (performance.now() - this.monotonicAtOpen) + this.ms;
  }

  next(): IBackoff<unknown> {
    return new OpenFor(this.ms);
  }
}
