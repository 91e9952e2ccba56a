import { CircuitState } from 'cockatiel';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../src/config.js';
import { SourceError } from '../src/errors.js';
import { SamplingBreaker } from '../src/monotonic-breaker.js';
import { Deadline } from '../src/resilience/deadline.js';
import { SourceRateLimiter } from '../src/resilience/rate-limiter.js';
import { countsAsFailure, MIN_ATTEMPT_MS, SourcePolicy } from '../src/resilience/source-policy.js';

/** The source policy alone, on fake timers: what it retries, when it stops, when the breaker opens and lets a probe through. */
const tuning = { ...loadConfig({}).tuning.analytics, retryBaseDelayMs: 10, retryMaxDelayMs: 10, breakerMinCalls: 4, breakerWindowMs: 10_000, breakerHalfOpenAfterMs: 5000 };

const unavailable = () => new SourceError({ code: 'SOURCE_UNAVAILABLE', source: 'analytics', retryable: true, status: 503 });
const badResponse = () => new SourceError({ code: 'SOURCE_BAD_RESPONSE', source: 'analytics', retryable: false, status: 200 });

function policy(overrides: Partial<typeof tuning> = {}): SourcePolicy {
  const t = { ...tuning, ...overrides };
  return new SourcePolicy('analytics', t, new SourceRateLimiter('analytics', 100_000, 100_000, null));
}

describe('SourcePolicy', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('retries a transient failure up to the attempts configured, then gives its error', async () => {
    let attempts = 0;
    const call = policy().execute(Deadline.after(3000), true, async () => {
      attempts++;
      throw unavailable();
    });
    const outcome = call.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(100);
    expect(await outcome).toMatchObject({ code: 'SOURCE_UNAVAILABLE' });
    expect(attempts).toBe(3);
  });

  it('does not retry what cannot help (a bad response), nor a write that is not idempotent', async () => {
    let attempts = 0;
    const p = policy();
    await expect(
      p.execute(Deadline.after(3000), true, async () => {
        attempts++;
        throw badResponse();
      }),
    ).rejects.toMatchObject({ code: 'SOURCE_BAD_RESPONSE' });
    await expect(
      p.execute(Deadline.after(3000), false, async () => {
        attempts++;
        throw unavailable();
      }),
    ).rejects.toMatchObject({ code: 'SOURCE_UNAVAILABLE' });
    expect(attempts).toBe(2);
  });

  it('an attempt cut by the deadline after others failed: its error also says what the one before ran into', async () => {
    let attempts = 0;
    const call = policy().execute(Deadline.after(3000), true, async () => {
      attempts++;
      if (attempts === 1) throw new SourceError({ code: 'SOURCE_TIMEOUT', source: 'analytics', retryable: true, detail: 'no answer within 1000 ms' });
      throw new SourceError({ code: 'SOURCE_TIMEOUT', source: 'analytics', retryable: true, local: true, detail: 'cancelled: the request deadline passed' });
    });
    const outcome = call.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(100);
    expect(await outcome).toMatchObject({ code: 'SOURCE_TIMEOUT', local: true, detail: 'cancelled: the request deadline passed (the attempt before: no answer within 1000 ms)' });
    expect(attempts).toBe(2);
  });

  it(`starts no retry with less than ${MIN_ATTEMPT_MS} ms of the deadline left: the real error comes back, not a timeout`, async () => {
    let attempts = 0;
    const call = policy({ retryMaxAttempts: 10 })
      .execute(Deadline.after(600), true, async () => {
        attempts++;
        // Each attempt takes 200 ms and fails.
        await new Promise((r) => setTimeout(r, 200));
        throw unavailable();
      })
      .catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(1000);
    expect(await call).toMatchObject({ code: 'SOURCE_UNAVAILABLE' });
    // 0–200, ~210–410; at ~420 only ~180 ms are left: no third attempt.
    expect(attempts).toBe(2);
  });

  it('opens the breaker after enough failures, fails fast while open, and closes after a successful probe', async () => {
    const p = policy({ retryMaxAttempts: 1 });
    let calls = 0;
    const failing = async () => {
      calls++;
      throw unavailable();
    };
    for (let i = 0; i < 6; i++) await p.execute(Deadline.after(3000), true, failing).catch(() => undefined);
    expect(p.state).toBe('OPEN');
    const before = calls;
    await expect(p.execute(Deadline.after(3000), true, failing)).rejects.toMatchObject({ code: 'SOURCE_CIRCUIT_OPEN', retryAfterSeconds: 5 });
    expect(calls).toBe(before);
    await vi.advanceTimersByTimeAsync(5000);
    expect(await p.execute(Deadline.after(3000), true, async () => 'ok')).toBe('ok');
    expect(p.state).toBe('CLOSED');
  });
});

describe("a source's breaker when the wall clock is stepped back (NTP correcting a clock that ran ahead, a VM restored)", () => {
  // Only Date is faked: the breaker's time is the monotonic clock's, which a step does not move.
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.UTC(2026, 11, 8, 12));
  });
  afterEach(() => vi.useRealTimers());
  const failing = async () => {
    throw unavailable();
  };

  it('an open breaker lets its probe through after its half-open time, not after the step, and says so in Retry-After', async () => {
    const p = policy({ retryMaxAttempts: 1, breakerHalfOpenAfterMs: 300 });
    for (let i = 0; i < 6; i++) await p.execute(Deadline.after(3000), true, failing).catch(() => undefined);
    expect(p.state).toBe('OPEN');
    vi.setSystemTime(Date.UTC(2026, 11, 8, 11));
    // On the wall clock this breaker was open for another hour, and told callers to come back in 3,601 s.
    await expect(p.execute(Deadline.after(3000), true, failing)).rejects.toMatchObject({ code: 'SOURCE_CIRCUIT_OPEN', retryAfterSeconds: 1 });
    await new Promise((r) => setTimeout(r, 350));
    expect(await p.execute(Deadline.after(3000), true, async () => 'ok')).toBe('ok');
    expect(p.state).toBe('CLOSED');
  });

  it('a closed breaker still opens when the vendor goes down after the step: the calls before it leave the window', async () => {
    const p = policy({ retryMaxAttempts: 1, breakerWindowMs: 500 });
    for (let i = 0; i < 20; i++) await p.execute(Deadline.after(3000), true, async () => 'ok');
    vi.setSystemTime(Date.UTC(2026, 11, 8, 11));
    await new Promise((r) => setTimeout(r, 600));
    // On the wall clock the window stopped rolling for the hour: 6 failures against the 20 successes kept it closed.
    for (let i = 0; i < 6; i++) await p.execute(Deadline.after(3000), true, failing).catch(() => undefined);
    expect(p.state).toBe('OPEN');
  });
});

describe('SamplingBreaker', () => {
  let now = 0;
  const breaker = (failureRatio: number) => new SamplingBreaker({ failureRatio, windowMs: 10_000, minCalls: 4 }, () => now);
  beforeEach(() => (now = 0));

  it('opens past the ratio once the window holds enough calls; a ratio of 1 only when every call failed', () => {
    const half = breaker(0.5);
    half.success(CircuitState.Closed);
    half.success(CircuitState.Closed);
    expect(half.failure(CircuitState.Closed)).toBe(false); // 3 calls: fewer than minCalls
    expect(half.failure(CircuitState.Closed)).toBe(false); // 2 of 4: not more than half
    expect(half.failure(CircuitState.Closed)).toBe(true); // 3 of 5
    const all = breaker(1);
    for (let i = 0; i < 3; i++) expect(all.failure(CircuitState.Closed)).toBe(false);
    expect(all.failure(CircuitState.Closed)).toBe(true);
    const allButOne = breaker(1);
    allButOne.success(CircuitState.Closed);
    for (let i = 0; i < 10; i++) expect(allButOne.failure(CircuitState.Closed)).toBe(false);
    // BREAKER_FAILURE_RATIO=1, which the config takes, stopped the server at start (cockatiel's RangeError).
    expect(policy({ breakerFailureRatio: 1 }).state).toBe('CLOSED');
  });

  it('forgets the whole window after a silence as long as it (cockatiel rolled one slice a call)', () => {
    const b = breaker(0.5);
    for (let i = 0; i < 10; i++) b.success(CircuitState.Closed);
    now = 9_000;
    for (let i = 0; i < 3; i++) b.failure(CircuitState.Closed);
    // 19 s later: the successes and these failures are both out of the window.
    now = 19_500;
    expect(b.failure(CircuitState.Closed)).toBe(false);
    expect(b.failure(CircuitState.Closed)).toBe(false);
    expect(b.failure(CircuitState.Closed)).toBe(false);
    expect(b.failure(CircuitState.Closed)).toBe(true);
  });

  it('refuses a ratio outside (0, 1]', () => {
    expect(() => breaker(0)).toThrow(RangeError);
    expect(() => breaker(1.5)).toThrow(RangeError);
  });
});

describe('what counts against a source (its breaker, its health)', () => {
  it('timeouts, connection failures, 5xx and unreadable successes do; a keyed write still being processed (409), a refusal and our own limits do not', () => {
    const error = (code: SourceError['code'], status?: number, local = false) =>
      new SourceError({ code, source: 'analytics', retryable: true, local, ...(status === undefined ? {} : { status }) });
    expect([error('SOURCE_TIMEOUT'), error('SOURCE_UNAVAILABLE'), error('SOURCE_UNAVAILABLE', 503), error('SOURCE_BAD_RESPONSE', 200)].map(countsAsFailure)).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect(
      [error('SOURCE_UNAVAILABLE', 409), error('SOURCE_BAD_RESPONSE', 422), error('SOURCE_RATE_LIMITED', 429), error('SOURCE_UNAVAILABLE', undefined, true)].map(countsAsFailure),
    ).toEqual([false, false, false, false]);
  });
});

describe('SourceRateLimiter without Redis', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('lets a call go at once (no promise) while its bucket holds a token; past the burst, and during a vendor pause, the call waits its turn', async () => {
    const limiter = new SourceRateLimiter('analytics', 10, 2, null);
    const waits: number[] = [];
    limiter.onWait((e) => waits.push(e.waitMs));
    expect(limiter.acquire(Deadline.after(3000))).toBeUndefined();
    expect(limiter.acquire(Deadline.after(3000))).toBeUndefined();
    // The burst is spent: the third waits for the next token, 1/10 s away.
    let third = false;
    const waiting = limiter.acquire(Deadline.after(3000))!.then(() => (third = true));
    await vi.advanceTimersByTimeAsync(99);
    expect(waits).toEqual([100]);
    expect(third).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await waiting;
    // A vendor's pause holds back even a call whose token is in the bucket.
    await vi.advanceTimersByTimeAsync(1000);
    limiter.throttled(300);
    let paused = false;
    const afterPause = limiter.acquire(Deadline.after(3000))!.then(() => (paused = true));
    await vi.advanceTimersByTimeAsync(300);
    expect(paused).toBe(false);
    await vi.advanceTimersByTimeAsync(100);
    await afterPause;
    expect(paused).toBe(true);
  });

  it('refuses a call whose turn is beyond its deadline, with the seconds until it could go', async () => {
    const limiter = new SourceRateLimiter('analytics', 1, 1, null);
    expect(limiter.acquire(Deadline.after(3000))).toBeUndefined();
    await expect(limiter.acquire(Deadline.after(500))).rejects.toMatchObject({ code: 'SOURCE_RATE_LIMITED', local: true, retryAfterSeconds: 1 });
    // The refusal booked nothing: the token a second later is the next call's.
    await vi.advanceTimersByTimeAsync(1000);
    expect(limiter.acquire(Deadline.after(3000))).toBeUndefined();
  });

  it('believes "none remaining" for 10 s at most; a vendor that answers a call sent before its reset is not believed again until it refuses one', () => {
    const limiter = new SourceRateLimiter('identity', 10, 2, null);
    const pauses: [string, number][] = [];
    limiter.onThrottle((e) => pauses.push([e.signal, e.pauseMs]));
    // True, and short: the pause is the reset's, and a call sent after it contradicts nothing.
    limiter.exhausted(800, 1_000);
    expect(limiter.answered(1_900)).toBeUndefined();
    // A long one: paused for 10 s (and the margin), not five minutes; a refusal then keeps it believed.
    limiter.exhausted(300_000, 10_000);
    limiter.throttled(300_000);
    limiter.exhausted(300_000, 400_000);
    // Calls sent before it was said are not its contradiction.
    expect(limiter.answered(399_000)).toBeUndefined();
    // One sent after, before its reset, and answered: the header was wrong.
    expect(limiter.answered(410_100)).toEqual({ saidAt: 400_000, until: 700_000 });
    limiter.exhausted(300_000, 420_000);
    expect(pauses).toEqual([
      ['exhausted', 850],
      ['exhausted', 10_050],
      ['429', 300_050],
      ['exhausted', 10_050],
    ]);
    // Until a 429 says the vendor does refuse.
    limiter.throttled(1_000);
    limiter.exhausted(5_000, 430_000);
    expect(pauses.at(-1)).toEqual(['exhausted', 5_050]);
  });
});
