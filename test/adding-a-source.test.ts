import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadConfig } from '../src/config.js';
import type { SourceName } from '../src/errors.js';
import type { GatewayContext } from '../src/context.js';
import type { Deadline } from '../src/resilience/deadline.js';
import { ApiKeyAuth } from '../src/sources/auth.js';
import { cachedEntity, defineSource } from '../src/sources/define-source.js';
import { HttpSource } from '../src/sources/http-source.js';
import type { UserEntity } from '../src/sources/models.js';
import { count, readableItems } from '../src/sources/normalize.js';
import { lookupInChunks, unreadableIds } from '../src/sources/paging.js';
import { SOURCES } from '../src/sources/registry.js';
import type { GraphQLResolveInfo } from 'graphql';
import { ScriptedUpstream } from './helpers/scripted-upstream.js';
import { startStack, type Stack } from './helpers/stack.js';

/**
 * docs/adding-a-source.md, as a test: a fourth read source, added the way the
 * guide says, and nothing else in the product changed. The vendor: a weather
 * service with a bulk endpoint, `GET /v1/forecasts?user_ids=a,b` →
 * `{"forecasts":[{"user_id","summary","temp_c"}]}`, behind an API key.
 */

// --- 1. The source: its routes, its response schema, its normalizer (src/sources/weather/weather-source.ts). ---
interface Forecast {
  summary: string;
  tempC: number;
}
const forecasts = z.object({
  forecasts: readableItems(z.object({ user_id: z.string(), summary: z.string(), temp_c: z.number(), updated: count.optional() })),
});

class WeatherSource extends HttpSource {
  forecasts(ids: readonly string[], deadline?: Deadline) {
    return lookupInChunks(ids, 100, async (batch) => {
      const res = await this.fetch({
        route: 'GET /v1/forecasts',
        method: 'GET',
        path: `/v1/forecasts?user_ids=${batch.map(encodeURIComponent).join(',')}`,
        schema: forecasts,
        deadline,
      });
      const { items, unreadable, problem } = res.body.forecasts;
      const found = items.map((f): [string, Forecast | Error] => [f.user_id, { summary: f.summary, tempC: f.temp_c }]);
      return unreadable === 0 ? found : [...found, ...unreadableIds(batch, found, () => this.unreadableEntity('GET /v1/forecasts', 'a forecast', problem))];
    });
  }
}

// --- 2. Its definition (src/sources/weather/index.ts): config keys, defaults, cached entity, schema and resolvers. ---
const weather = defineSource({
  name: 'weather',
  description: 'the weather vendor (forecasts)',
  env: { url: 'WEATHER_URL', credentials: { apiKey: 'WEATHER_API_KEY' } },
  tuning: { rateLimitPerSec: 20, rateLimitBurst: 2 },
  entities: {
    'weather.forecast': cachedEntity<string, Forecast | null>()({
      env: 'WEATHER_FORECAST',
      what: "a user's forecast",
      defaults: { ttlMs: 60_000, staleWhileRevalidateMs: 0, staleIfErrorMs: 600_000 },
      group: (id) => id,
      variant: () => '',
      fetch: async (source: WeatherSource, ids, deadline) => {
        const found = await source.forecasts(ids, deadline);
        return ids.map((id) => found.get(id) ?? null);
      },
    }),
  },
  graphql: {
    typeDefs: `extend type User { "The user's local forecast (weather vendor)." forecast: Forecast }  type Forecast { summary: String! tempC: Float! }`,
    resolvers: {
      User: {
        forecast: (user: UserEntity, _args: unknown, ctx: GatewayContext, info: GraphQLResolveInfo) =>
          ctx.stale.take(ctx.loaders.entity<string, Forecast | null>('weather.forecast').load(user.id), info),
      },
    },
  },
  create: (base, endpoint) => new WeatherSource({ ...base, auth: new ApiKeyAuth('x-api-key', endpoint.apiKey) }),
});

// --- 3. Register it: SOURCES in src/sources/registry.ts gains `weather`. Here, the server is given the list. ---
const vendor = new ScriptedUpstream();
let stack: Stack;

beforeAll(async () => {
  await vendor.start();
  const tuning = loadConfig({}).tuning.analytics;
  stack = await startStack({
    sources: [...SOURCES, weather],
    endpoints: (real) => ({ ...real, weather: { url: vendor.url, apiKey: 'weather-key' } }),
    tuning: { ['weather' as SourceName]: { ...tuning, rateLimitPerSec: 1000, rateLimitBurst: 100, retryMaxAttempts: 1, breakerMinCalls: 3, breakerHalfOpenAfterMs: 60_000 } },
    cache: { enabled: true },
  });
});
afterAll(async () => {
  await stack?.close();
  await vendor.close();
});

const QUERY = `query($ids: [ID!]!) { users(ids: $ids) { id name forecast { summary tempC } } }`;
const forecastCalls = () => vendor.seen.filter((r) => r.url.startsWith('/v1/forecasts')).length;

describe('a fourth read source, added from its folder alone', () => {
  it('is queried through the real server: batched into one vendor call, cached, and typed when it fails', async () => {
    vendor.script = (req) => {
      if (req.headers['x-api-key'] !== 'weather-key') return { status: 401, body: {} };
      const ids = new URL(req.url, 'http://x').searchParams.get('user_ids')!.split(',').map(decodeURIComponent);
      return { body: { forecasts: ids.map((id) => ({ user_id: id, summary: `sunny over ${id.slice(-4)}`, temp_c: 21.5, radar: { new: true } })) } };
    };
    const ids = [stack.userId(1), stack.userId(2), stack.userId(3)];
    const res = await stack.gql<Record<string, any>>(QUERY, { ids });
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data!.users.map((u: Record<string, any>) => u.forecast)).toEqual(ids.map((id) => ({ summary: `sunny over ${id.slice(-4)}`, tempC: 21.5 })));
    // Batching: three users, one vendor call.
    expect(forecastCalls()).toBe(1);
    // Cache: asked again, no call.
    await stack.gql(QUERY, { ids });
    expect(forecastCalls()).toBe(1);

    // The vendor fails: its field is null with a typed error, every other vendor's data intact.
    vendor.script = () => ({ status: 503, body: { error: 'down' } });
    const fresh = [stack.userId(4), stack.userId(5)];
    const failing = await stack.gql<Record<string, any>>(QUERY, { ids: fresh });
    expect(failing.status).toBe(200);
    expect(failing.body.data!.users.map((u: Record<string, any>) => [u.name !== null, u.forecast])).toEqual([
      [true, null],
      [true, null],
    ]);
    expect(failing.body.errors!.map((e) => e.extensions)).toEqual([
      { code: 'SOURCE_UNAVAILABLE', source: 'weather', retryable: true },
      { code: 'SOURCE_UNAVAILABLE', source: 'weather', retryable: true },
    ]);

    // The breaker: after enough failures it opens, and calls stop reaching the vendor.
    for (let i = 6; i < 9; i++) await stack.gql(QUERY, { ids: [stack.userId(i)] });
    const sources = await stack.gql<Record<string, any>>(`{ sources { name state } }`);
    expect(sources.body.data!.sources).toContainEqual({ name: 'weather', state: 'OPEN' });
    const before = forecastCalls();
    const open = await stack.gql<Record<string, any>>(QUERY, { ids: [stack.userId(20)] });
    expect(open.body.errors![0]!.extensions).toMatchObject({ code: 'SOURCE_CIRCUIT_OPEN', source: 'weather' });
    expect(forecastCalls()).toBe(before);

    // Its drift is seen like any vendor's, and its metrics carry its name.
    const metrics = await (await fetch(stack.url.replace('/graphql', '/metrics'))).text();
    expect(metrics).toMatch(/gateway_upstream_schema_drift_total\{source="weather",endpoint="GET \/v1\/forecasts",kind="unknown",path="forecasts\[\]\.radar"\} 1/);
    expect(metrics).toMatch(/gateway_upstream_requests_total\{source="weather",route="GET \/v1\/forecasts",outcome="SOURCE_UNAVAILABLE"\}/);
  });
});
