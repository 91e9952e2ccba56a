import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Deadline } from '../src/resilience/deadline.js';

/** The request deadline: its signal is made only when asked for, and aborts at expiry whenever it was asked for. */
describe('Deadline', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('a signal asked for before expiry aborts at expiry', async () => {
    const deadline = Deadline.after(100);
    const signal = deadline.signal;
    expect(signal.aborted).toBe(false);
    expect(deadline.expired).toBe(false);
    await vi.advanceTimersByTimeAsync(100);
    expect(signal.aborted).toBe(true);
    expect(deadline.expired).toBe(true);
  });

  it('a signal first asked for after expiry is already aborted', async () => {
    const deadline = Deadline.after(50);
    await vi.advanceTimersByTimeAsync(50);
    expect(deadline.expired).toBe(true);
    expect(deadline.signal.aborted).toBe(true);
    expect(deadline.signal).toBe(deadline.signal);
  });

  it('disposed, it never aborts, and its time still runs out', async () => {
    const deadline = Deadline.after(50);
    const signal = deadline.signal;
    deadline.dispose();
    await vi.advanceTimersByTimeAsync(60);
    expect(signal.aborted).toBe(false);
    expect(deadline.expired).toBe(true);
    expect(deadline.remainingMs()).toBe(0);
  });

  it('passed: resolves at expiry, at once when already expired, never when disposed first', async () => {
    const settled: string[] = [];
    const early = Deadline.after(100);
    void early.passed.then(() => settled.push('early'));
    expect(early.passed).toBe(early.passed);
    const disposed = Deadline.after(100);
    void disposed.passed.then(() => settled.push('disposed'));
    disposed.dispose();
    await vi.advanceTimersByTimeAsync(99);
    expect(settled).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(settled).toEqual(['early']);
    const late = Deadline.after(10);
    await vi.advanceTimersByTimeAsync(1_000);
    void late.passed.then(() => settled.push('late'));
    await vi.advanceTimersByTimeAsync(0);
    expect(settled).toEqual(['early', 'late']);
  });

  it('a list with hundreds of vendor calls in flight on its signal makes no "possible memory leak" warning', async () => {
    vi.useRealTimers();
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const deadline = Deadline.after(1_000);
      // One abort listener a call in flight, as undici adds (a 500-user list's per-key reads are hundreds at once).
      const calls = Array.from({ length: 500 }, () => new AbortController());
      for (const call of calls) deadline.signal.addEventListener('abort', () => call.abort(), { once: true });
      await new Promise((r) => setTimeout(r, 10)); // Node emits its warning on a later tick
      expect(warnings.map((w) => w.name)).not.toContain('MaxListenersExceededWarning');
      deadline.dispose();
    } finally {
      process.off('warning', onWarning);
    }
  });
});

describe('a Deadline when the wall clock is stepped (NTP, a VM restored)', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.UTC(2026, 11, 8, 12));
  });
  afterEach(() => vi.useRealTimers());

  it('neither ends nor lengthens a request: an hour forward left every retry unstarted and every call "deadline passed"', () => {
    const deadline = Deadline.after(1000);
    vi.setSystemTime(Date.UTC(2026, 11, 8, 13));
    expect(deadline.expired).toBe(false);
    expect(deadline.remainingMs()).toBeGreaterThan(900);
    vi.setSystemTime(Date.UTC(2026, 11, 8, 11));
    expect(deadline.remainingMs()).toBeLessThanOrEqual(1000);
    deadline.dispose();
  });
});
