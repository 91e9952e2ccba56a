import { expect, it } from 'vitest';
import { stackPool } from './helpers/stack.js';

/**
 * What `/status` draws, as `/status/data` serves it: per source, calls and
 * errors over 15 minutes, the cache hit ratio of its entities, the learned
 * rate against its ceiling, the breaker; admin only. (The page itself, in a
 * browser: test/browser.test.ts.)
 */
const stackWith = stackPool((o) => ({ cache: { enabled: true }, ...o }));

it('counts each source’s calls, failures and cache hits, and is an admin’s to read', async () => {
  const stack = await stackWith();
  const data = async (token: string) => fetch(stack.url.replace('/graphql', '/status/data'), { headers: { authorization: `Bearer ${token}` } });
  const user = stack.userId(120);
  const Q = `query($u: ID!) { user(id: $u) { name metrics { pageViews } } }`;
  await stack.gql(Q, { u: user });
  await stack.gql(Q, { u: user });
  await stack.faults('analytics', { errorRate: 1, errorStatus: 503 });
  await stack.gql(Q, { u: stack.userId(121) });

  expect((await data(await stack.token({ admin: false }))).status).toBe(403);
  const body = (await (await data(await stack.token())).json()) as { sources: Record<string, any>[] };
  const identity = body.sources.find((s) => s.name === 'identity')!;
  const analytics = body.sources.find((s) => s.name === 'analytics')!;
  // Four profile lookups (the pool's warm-up, then the three queries): only the repeat was a hit.
  expect(identity.last15m.errorRate).toBe(0);
  expect(identity.cacheHitRatio).toBe(0.25);
  expect(identity.breaker).toBe('CLOSED');
  expect(identity.rateLimitPerSec).toBe(40);
  expect(identity.ceilingPerSec).toBe(40);
  // Analytics: one call that answered, then one that failed on every attempt.
  expect(analytics.last15m.calls).toBeGreaterThanOrEqual(2);
  expect(analytics.last15m.errorRate).toBeGreaterThan(0.5);
  expect(analytics.series.requestsPerSec).toHaveLength(60);
  // The newest bucket that saw calls (a 15 s bucket boundary may fall between the failing query and this read).
  const seen = (analytics.series.errorRate as (number | null)[]).filter((r) => r !== null);
  expect(seen.at(-1)).toBeGreaterThan(0.5);
});
