import { describe, expect, it } from 'vitest';
import { simulatedTwins } from '../../../test/helpers/twins.js';

/** This vendor's simulated twin against UPSTREAMS.md: what a source here may rely on, and what the simulator must do. */
const t = simulatedTwins();
const { analytics, faults } = t;

describe('analytics', () => {
  it('401 invalid_api_key without the key', async () => {
    const res = await fetch(`${t.up.analytics.url}/v1/metrics/query`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: 'invalid_api_key' });
  });

  it('bulk metrics in Unix seconds, unknown ids in missing, at most 100 ids', async () => {
    const known = t.up.dataset.users[0]!.user_id;
    const res = await analytics('/v1/metrics/query', {
      method: 'POST',
      body: JSON.stringify({ user_ids: [known, 'nope'], from: 1_767_225_600, to: 1_767_225_600 + 3 * 86_400, granularity: 'day' }),
    });
    const body = (await res.json()) as { data: { user_id: string; last_active: number; series: { ts: number }[] }[]; missing: string[] };
    expect(body.missing).toEqual(['nope']);
    expect(body.data[0]!.user_id).toBe(known);
    expect(body.data[0]!.series.map((p) => p.ts)).toEqual([1_767_225_600, 1_767_312_000, 1_767_398_400]);
    expect(Number.isInteger(body.data[0]!.last_active) && body.data[0]!.last_active < 1e11).toBe(true);
    const tooMany = await analytics('/v1/metrics/query', {
      method: 'POST',
      body: JSON.stringify({ user_ids: Array.from({ length: 101 }, (_, i) => `u${i}`), from: 0, to: 86_400, granularity: 'day' }),
    });
    expect(tooMany.status).toBe(400);
  });

  it('events newest first in Unix ms with an opaque next_cursor, limit at most 200', async () => {
    const id = encodeURIComponent(t.up.dataset.users[1]!.user_id);
    const p1 = (await (await analytics(`/v1/users/${id}/events?limit=3`)).json()) as { data: { ts: number }[]; next_cursor: string };
    expect(p1.data).toHaveLength(3);
    expect(p1.data[0]!.ts).toBeGreaterThan(1e12);
    expect(p1.data[0]!.ts).toBeGreaterThan(p1.data[1]!.ts);
    const p2 = (await (await analytics(`/v1/users/${id}/events?limit=3&cursor=${encodeURIComponent(p1.next_cursor)}`)).json()) as { data: { ts: number }[] };
    expect(p2.data[0]!.ts).toBeLessThan(p1.data[2]!.ts);
    expect((await analytics(`/v1/users/${id}/events?limit=201`)).status).toBe(400);
  });

  it('429 with Retry-After in seconds; 503 as transient trouble', async () => {
    await faults(t.up.analytics, { rateLimitPerSec: 1 });
    const [, second] = [await analytics('/v1/users/x/events'), await analytics('/v1/users/x/events')];
    expect(second!.status).toBe(429);
    expect(second!.headers.get('retry-after')).toMatch(/^\d+$/);
    await faults(t.up.analytics, { errorRate: 1 });
    expect((await analytics('/v1/users/x/events')).status).toBe(503);
  });
});
