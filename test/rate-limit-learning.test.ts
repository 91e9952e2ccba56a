import { describe, expect, it, vi } from 'vitest';
import { AdaptiveRate, adaptiveRateTuning } from '../src/resilience/adaptive-rate.js';
import { remainingWindow, retryAfterMs, vendorNow } from '../src/sources/rate-limit-headers.js';
import { SourceRateLimiter } from '../src/resilience/rate-limiter.js';
import { Deadline } from '../src/resilience/deadline.js';
import { calls, sharedStack, stackPool } from './helpers/stack.js';

/** How a source learns its vendor's real limit: the arithmetic, the headers, and a vendor that says when it is about to refuse. */
describe('AdaptiveRate', () => {
  it('pauses for a 429, lowers the rate once per round, climbs back while no 429 comes, never past the ceiling', () => {
    let now = 0;
    const rate = new AdaptiveRate(adaptiveRateTuning(80), () => now);
    expect(rate.ratePerSec()).toBe(80);
    rate.throttled(400);
    expect(rate.pauseLeftMs()).toBe(400);
    expect(rate.ratePerSec()).toBeCloseTo(56);
    // The 429s of calls already in flight are the same round: no second decrease.
    now = 10;
    rate.throttled(390);
    expect(rate.ratePerSec()).toBeCloseTo(56 + 0.01 * 2);
    // Additive increase: 2/s a second (ceiling / 40).
    now = 5000;
    expect(rate.ratePerSec()).toBeCloseTo(66);
    expect(rate.pauseLeftMs()).toBe(0);
    now = 1_000_000;
    expect(rate.ratePerSec()).toBe(80);
    // Each new round decreases again; with 429s every second it settles where decrease and climb balance: r = 0.7 (r + 2).
    for (let i = 0; i < 50; i++) {
      now += 1000;
      rate.throttled(0);
    }
    expect(rate.ratePerSec()).toBeCloseTo(0.7 * (14 / 3 + 2), 1);
    // And never below the floor (ceiling / 100).
    const still = new AdaptiveRate({ ...adaptiveRateTuning(80), increasePerSecPerSec: 0 }, () => now);
    for (let i = 0; i < 50; i++) {
      now += 1000;
      still.throttled(0);
    }
    expect(still.ratePerSec()).toBe(0.8);
  });

  it('an exhausted window pauses without lowering the rate', () => {
    const now = 0;
    const rate = new AdaptiveRate(adaptiveRateTuning(40), () => now);
    rate.exhausted(700);
    expect(rate.pauseLeftMs()).toBe(700);
    expect(rate.ratePerSec()).toBe(40);
  });
});

describe('a wall clock stepped back (NTP correcting a clock that ran ahead, a VM restored)', () => {
  it("neither empties a vendor's token bucket nor makes its pause last as long as the step", async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.UTC(2026, 11, 8, 12));
      const limiter = new SourceRateLimiter('analytics', 10, 2, null);
      const acquired = async () => {
        const deadline = Deadline.after(2000);
        const at = performance.now();
        try {
          await limiter.acquire(deadline);
          return performance.now() - at;
        } finally {
          deadline.dispose();
        }
      };
      expect(await acquired()).toBeLessThan(50);
      expect(await acquired()).toBeLessThan(50);
      // An hour back: on the wall clock the bucket owed 36,000 tokens and every call was refused SOURCE_RATE_LIMITED.
      vi.setSystemTime(Date.UTC(2026, 11, 8, 11));
      const next = await acquired();
      expect(next).toBeGreaterThan(50);
      expect(next).toBeLessThan(300);
      // The vendor asks for half a second; the clock goes back another hour while the call waits.
      limiter.throttled(500);
      const waiting = acquired();
      vi.setSystemTime(Date.UTC(2026, 11, 8, 10));
      const waited = await waiting;
      expect(waited).toBeGreaterThan(450);
      expect(waited).toBeLessThan(1500);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('rate-limit headers', () => {
  const now = Date.parse('2024-01-02T03:04:05Z');
  it('Retry-After in seconds or as an HTTP-date, resets as delta seconds, Unix seconds or Unix ms, in ms', () => {
    expect(retryAfterMs({ 'retry-after': '2' }, now)).toBe(2000);
    expect(retryAfterMs({ 'retry-after': 'Tue, 02 Jan 2024 03:04:06 GMT' }, now)).toBe(1000);
    expect(retryAfterMs({ 'x-ratelimit-reset': String(now / 1000 + 3) }, now)).toBe(3000);
    expect(retryAfterMs({ 'x-ratelimit-reset': String(now + 1500) }, now)).toBe(1500);
    expect(retryAfterMs({ 'ratelimit-reset': '4' }, now)).toBe(4000);
    expect(retryAfterMs({ ratelimit: '"default";r=0;t=7' }, now)).toBe(7000);
    // A pause of a day is not believed.
    expect(retryAfterMs({ 'retry-after': '86400' }, now)).toBe(5 * 60_000);
    expect(retryAfterMs({ 'retry-after': 'later' }, now)).toBeUndefined();
    // A fraction, as vendors counting in ms write it; and numbers V8's Date.parse would take for days in 2000 and 2001.
    expect(retryAfterMs({ 'retry-after': '1.5' }, now)).toBe(1500);
    expect(retryAfterMs({ 'retry-after': '2.0' }, now)).toBe(2000);
    expect(retryAfterMs({ 'retry-after': '-1' }, now)).toBeUndefined();
    expect(retryAfterMs({ 'retry-after': 'Mon, 1' }, now)).toBeUndefined();
  });

  it("instants are read on the vendor's clock when its Date header is more than 2 s off ours", () => {
    const local = Date.parse('2024-01-02T03:04:05.000Z');
    const at = (iso: string) => new Date(iso).toUTCString();
    expect(vendorNow({ date: at('2024-01-02T03:05:05Z') }, local)).toBe(local + 60_500);
    expect(vendorNow({ date: at('2024-01-02T03:03:05Z') }, local)).toBe(local - 59_500);
    // Within the header's own second and the answer's way here: our clock.
    expect(vendorNow({ date: at('2024-01-02T03:04:06Z') }, local)).toBe(local);
    expect(vendorNow({ date: 'garbage' }, local)).toBe(local);
    expect(vendorNow({}, local)).toBe(local);
    // A minute ahead: its reset a second after its now is a second away, not 61.
    const ahead = { date: at('2024-01-02T03:05:05Z'), 'x-ratelimit-reset': String(local / 1000 + 61), 'x-ratelimit-remaining': '0' };
    const realNow = vi.spyOn(Date, 'now').mockReturnValue(local);
    try {
      expect(retryAfterMs(ahead)).toBe(500);
      expect(remainingWindow(ahead)).toEqual({ remaining: 0, resetInMs: 500 });
    } finally {
      realNow.mockRestore();
    }
  });

  it("an HTTP-date in any of RFC 9110's three forms is GMT, whatever the server's time zone", () => {
    const tz = process.env.TZ;
    process.env.TZ = 'America/New_York';
    try {
      for (const date of ['Tue, 02 Jan 2024 03:04:07 GMT', 'Tuesday, 02-Jan-24 03:04:07 GMT', 'Tue Jan  2 03:04:07 2024']) {
        expect(retryAfterMs({ 'retry-after': date }, now), date).toBe(2000);
      }
    } finally {
      if (tz === undefined) delete process.env.TZ;
      else process.env.TZ = tz;
    }
  });

  it('calls remaining before the reset, in every dialect; nothing when either half is missing', () => {
    expect(remainingWindow({ 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(now / 1000 + 1) }, now)).toEqual({ remaining: 0, resetInMs: 1000 });
    expect(remainingWindow({ 'ratelimit-remaining': '3', 'ratelimit-reset': '2' }, now)).toEqual({ remaining: 3, resetInMs: 2000 });
    expect(remainingWindow({ ratelimit: 'limit=100, remaining=0, reset=5' }, now)).toEqual({ remaining: 0, resetInMs: 5000 });
    expect(remainingWindow({ 'x-ratelimit-remaining': '0' }, now)).toBeUndefined();
  });
});

const stack = sharedStack();

describe('a vendor that says how many calls remain', () => {
  it('identity at 5 requests a second: the source pauses when none remain, before the vendor refuses', async () => {
    await stack.gql(`{ user(id: "warm-up") { id } }`);
    await stack.faults('identity', { rateLimitPerSec: 5 });
    const names: unknown[] = [];
    for (let i = 0; i < 12; i++) {
      const res = await stack.gql<Record<string, any>>(`query($id: ID!) { user(id: $id) { name } }`, { id: stack.userId(30 + i) });
      names.push(res.body.data!.user.name);
    }
    expect(names.every((n) => typeof n === 'string')).toBe(true);
    const stats = await stack.stats('identity');
    expect(stats.routes['GET /api/v2/users']!.statuses['429']).toBeUndefined();
    expect(stats.maxPerSecond).toBeLessThanOrEqual(5);
    const metrics = await (await fetch(stack.url.replace('/graphql', '/metrics'))).text();
    expect(metrics).toMatch(/gateway_upstream_throttles_total\{source="identity",signal="exhausted"\} [1-9]/);
    expect(metrics).toMatch(/gateway_upstream_rate_limit_per_second\{source="identity"\} 40/);
  });
});

describe('a vendor whose rate-limit headers lie', () => {
  it('identity says 999 calls remain and refuses past 5 a second: its 429s teach the rate, every name is answered', async () => {
    await stack.gql(`{ user(id: "warm-up") { id } }`);
    const throttles = async () => {
      const text = await (await fetch(stack.url.replace('/graphql', '/metrics'))).text();
      const count = (signal: string) => Number(new RegExp(`gateway_upstream_throttles_total\\{source="identity",signal="${signal}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
      return { refusals: count('429'), exhausted: count('exhausted'), rate: Number(/gateway_upstream_rate_limit_per_second\{source="identity"\} ([\d.]+)/.exec(text)![1]) };
    };
    const before = await throttles();
    expect(before.rate).toBe(40);
    await stack.faults('identity', { rateLimitPerSec: 5, headers: { 'x-ratelimit-limit': '1000', 'x-ratelimit-remaining': '999' } });
    const names: unknown[] = [];
    for (let i = 0; i < 30; i++) {
      const res = await stack.gql<Record<string, any>>(`query($id: ID!) { user(id: $id) { name } }`, { id: stack.userId(60 + i) });
      names.push(res.body.data?.user?.name ?? res.body.errors?.[0]?.extensions?.code);
    }
    // Each 429 paused the source until the window's reset and was retried inside the request's deadline.
    expect(names.filter((n) => typeof n !== 'string')).toEqual([]);
    const refused = (await stack.stats('identity')).routes['GET /api/v2/users']!.statuses['429'] ?? 0;
    expect(refused).toBeGreaterThan(0);
    // The headers never said "exhausted": only the refusals can have brought the rate down from its ceiling of 40.
    const after = await throttles();
    expect(after.refusals - before.refusals).toBe(refused);
    expect(after.exhausted).toBe(before.exhausted);
    expect(after.rate).toBeLessThan(40);
  });

  it('identity says none remain for 5 minutes on every answer, yet answers: one pause of at most 10 s, one warn line, then no more pauses', async () => {
    await stack.gql(`{ user(id: "warm-up") { id } }`);
    const resetIn300s = String(Math.floor(Date.now() / 1000) + 300);
    await stack.faults('identity', { headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': resetIn300s } });
    const logsBefore = stack.logs.length;
    const callsBefore = calls(await stack.stats('identity'), 'GET /api/v2/users');
    const lookup = async (i: number) => (await stack.gql<Record<string, any>>(`query($id: ID!) { user(id: $id) { name } }`, { id: stack.userId(120 + i) })).body;
    // The first answer says "none remaining": the next lookups, inside the pause, are refused without a call.
    expect(typeof (await lookup(0)).data!.user.name).toBe('string');
    const paused = await lookup(1);
    expect(paused.errors![0]!.extensions!.code).toBe('SOURCE_RATE_LIMITED');
    // Ten seconds and the pause's margin (less what has passed since), not the five minutes the header named.
    expect(paused.errors![0]!.extensions!.retryAfterSeconds).toBeGreaterThanOrEqual(5);
    expect(paused.errors![0]!.extensions!.retryAfterSeconds).toBeLessThanOrEqual(11);
    await new Promise((r) => setTimeout(r, 10_200));
    // The pause ended long before the reset it named; the vendor answered, so its header is wrong and no longer paused for.
    const names = [];
    for (let i = 2; i < 8; i++) names.push((await lookup(i)).data?.user?.name);
    expect(names.every((n) => typeof n === 'string')).toBe(true);
    // Seven lookups reached identity: the paused one made no call.
    expect(calls(await stack.stats('identity'), 'GET /api/v2/users') - callsBefore).toBe(7);
    const warned = stack.logs.slice(logsBefore).filter((l) => l.includes('is not believed until it refuses'));
    expect(warned).toHaveLength(1);
    // Wall-clock times in the line (the limiter times on the monotonic clock): the call just now, the reset it named.
    const said = JSON.parse(warned[0]!) as { saidAt: string; until: string; answeredCallSentAt: string };
    expect(Math.abs(Date.parse(said.answeredCallSentAt) - Date.now())).toBeLessThan(15_000);
    expect(Math.abs(Date.parse(said.until) - Number(resetIn300s) * 1000)).toBeLessThan(15_000);
    expect(Date.parse(said.saidAt)).toBeLessThan(Date.parse(said.answeredCallSentAt));
    await stack.faults('identity', {});
  }, 20_000);
});

describe('a vendor whose clock is a minute off ours (its Date header says so)', () => {
  const fresh = stackPool();
  for (const skewMs of [60_000, -60_000]) {
    it(`identity's clock ${skewMs > 0 ? 'ahead' : 'behind'} and refusing past 5 a second: every name answered, no call sent again before a reset`, async () => {
      const stack = await fresh();
      await stack.faults('identity', { rateLimitPerSec: 5, clockSkewMs: skewMs });
      const names: unknown[] = [];
      for (let i = 0; i < 20; i++) {
        const res = await stack.gql<Record<string, any>>(`query($id: ID!) { user(id: $id) { name } }`, { id: stack.userId(160 + i) });
        names.push(res.body.data?.user?.name ?? res.body.errors?.[0]?.extensions);
      }
      // Read on our clock, its resets were a minute away (a pause past every deadline) or a minute gone (no pause at all).
      expect(names.filter((n) => typeof n !== 'string')).toEqual([]);
      const stats = await stack.stats('identity');
      expect(stats.retriedEarly).toBe(0);
      expect(stats.maxPerSecond).toBeLessThanOrEqual(6);
    }, 20_000);
  }
});
