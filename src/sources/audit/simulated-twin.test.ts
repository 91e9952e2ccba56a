import { describe, expect, it } from 'vitest';
import { simulatedTwins } from '../../../test/helpers/twins.js';

/** This vendor's simulated twin against UPSTREAMS.md: what a source here may rely on, and what the simulator must do. */
const t = simulatedTwins();
const { audit } = t;

describe('audit', () => {
  it('202 with id and received_at; a repeated key is the first response and no duplicate', async () => {
    const event = { actor: 'a', action: 'profile.updated', target: 'auth0|t1', at: new Date().toISOString(), details: { field: 'name' } };
    const post = () => audit('/v1/events', { method: 'POST', headers: { 'idempotency-key': 'audit-1' }, body: JSON.stringify(event) });
    const first = await post();
    expect(first.status).toBe(202);
    const text = await first.text();
    expect(JSON.parse(text)).toMatchObject({ id: expect.any(String), received_at: expect.stringMatching(/Z$/) });
    expect(await (await post()).text()).toBe(text);
    const list = (await (await audit('/v1/events?target=auth0%7Ct1&limit=10')).json()) as { data: unknown[] };
    expect(list.data).toHaveLength(1);
  });
});
