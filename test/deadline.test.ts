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
});
