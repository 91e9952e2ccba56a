import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Dataset } from '../simulator/dataset.js';
import type { StatsSnapshot } from '../simulator/index.js';
import { startServerProcess, startUpstreamsProcess, stopAll, type Child } from './helpers/processes.js';

/**
 * OpenTelemetry, as deployed: the server process exports over OTLP/HTTP to a
 * small receiver on loopback (this test's), the vendors in their own process.
 * A dashboard query with one vendor failing, sent with the client's W3C
 * `traceparent`: one span for the operation, continuing the client's trace;
 * one per vendor call beneath it, with source, endpoint, batch size,
 * attempts, breaker state and error code; cache lookups as events; the
 * `traceparent` passed on to the vendors; the trace id in the log lines.
 */
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: Record<string, unknown> }[];
  events?: { name: string; attributes: { key: string; value: Record<string, unknown> }[] }[];
  status?: { code?: number; message?: string };
}

const spans: OtlpSpan[] = [];
let receiver: Server;
let server: { process: Child; url: string };
let vendors: { child: Child; env: Record<string, string> };
const SECRET = randomBytes(32).toString('base64url');
const user = new Dataset().users[33]!.user_id;

const attr = (span: OtlpSpan, key: string): unknown => {
  const v = span.attributes.find((a) => a.key === key)?.value;
  if (!v) return undefined;
  if ('arrayValue' in v) return ((v.arrayValue as { values?: Record<string, unknown>[] }).values ?? []).map((x) => Object.values(x)[0]);
  const value = Object.values(v)[0];
  return 'intValue' in v ? Number(value) : value;
};

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/v1/traces') {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[] };
        for (const rs of body.resourceSpans) for (const ss of rs.scopeSpans) spans.push(...ss.spans);
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  vendors = await startUpstreamsProcess();
  server = await startServerProcess({
    ...vendors.env,
    AUTH_JWT_SECRET: SECRET,
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`,
  });
  await server.process.waitFor(/Tracing: spans exported/);
}, 90_000);

afterAll(async () => {
  await stopAll();
  receiver?.close();
});

it('a dashboard with analytics failing: the operation span in the client’s trace, a span per vendor call with its details, traceparent to vendors, trace id in logs', async () => {
  await fetch(`${vendors.env.ANALYTICS_URL}/__admin/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ errorRate: 1, errorStatus: 503 }),
  });
  const token = await new SignJWT({ scope: 'admin' }).setProtectedHeader({ alg: 'HS256' }).setSubject(user).setExpirationTime('5m').sign(new TextEncoder().encode(SECRET));
  const clientTrace = randomBytes(16).toString('hex');
  const clientSpan = randomBytes(8).toString('hex');
  const res = await fetch(server.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, traceparent: `00-${clientTrace}-${clientSpan}-01` },
    body: JSON.stringify({
      query: `query Dashboard($u: ID!) { user(id: $u) { name metrics { pageViews } unreadNotificationCount notifications(first: 2) { totalCount } } }`,
      variables: { u: user },
    }),
  });
  const body = (await res.json()) as { errors?: { extensions: { code: string } }[]; data: { user: { name: string } } };
  expect(body.data.user.name).toEqual(expect.any(String));
  expect(body.errors?.[0]?.extensions.code).toBe('SOURCE_UNAVAILABLE');

  const ours = () => spans.filter((s) => s.traceId === clientTrace);
  for (let i = 0; i < 60 && !ours().some((s) => s.name === 'query Dashboard'); i++) await new Promise((r) => setTimeout(r, 100));
  const operation = ours().find((s) => s.name === 'query Dashboard')!;
  expect(operation).toBeDefined();
  expect(operation.parentSpanId).toBe(clientSpan);
  expect(operation.kind).toBe(2); // SERVER
  expect(attr(operation, 'graphql.operation.type')).toBe('query');
  expect(attr(operation, 'gateway.error_codes')).toEqual(['SOURCE_UNAVAILABLE']);
  expect(operation.events?.some((e) => e.name === 'cache')).toBe(true);

  const calls = ours().filter((s) => s.parentSpanId === operation.spanId && s.kind === 3); // CLIENT
  const bySource = (source: string) => calls.filter((s) => attr(s, 'gateway.source') === source);
  expect(bySource('identity').length).toBeGreaterThanOrEqual(1);
  expect(bySource('notifications').length).toBeGreaterThanOrEqual(2);
  const analytics = bySource('analytics')[0]!;
  expect(attr(analytics, 'gateway.endpoint')).toBe('POST /v1/metrics/query');
  expect(attr(analytics, 'gateway.batch_size')).toBe(1);
  expect(attr(analytics, 'gateway.error_code')).toBe('SOURCE_UNAVAILABLE');
  expect(attr(analytics, 'gateway.attempts')).toBeGreaterThanOrEqual(2);
  expect(attr(analytics, 'gateway.breaker_state')).toBe('CLOSED');
  expect(analytics.status?.code).toBe(2); // ERROR
  const identity = bySource('identity').find((s) => attr(s, 'gateway.endpoint') === 'GET /api/v2/users?q')!;
  expect(attr(identity, 'gateway.error_code')).toBeUndefined();
  expect(attr(identity, 'gateway.batch_size')).toBe(1);

  // The vendors were called in the same trace.
  const stats = (await (await fetch(`${vendors.env.ANALYTICS_URL}/__admin/stats`)).json()) as StatsSnapshot;
  expect(stats.routes['POST /v1/metrics/query']!.traceparents.some((t) => t.startsWith(`00-${clientTrace}-`))).toBe(true);
  // And the server's log lines of the request carry its trace id.
  expect(server.process.output()).toMatch(new RegExp(`"traceId":"${clientTrace}"[^\\n]*"msg":"request"`));
});
