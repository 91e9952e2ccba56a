import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, envSchema, loadConfig } from '../src/config.js';

const ALL = {
  IDENTITY_URL: 'https://tenant.example.com',
  IDENTITY_CLIENT_ID: 'id',
  IDENTITY_CLIENT_SECRET: 'secret',
  IDENTITY_AUDIENCE: 'https://tenant.example.com/api/v2/',
  ANALYTICS_URL: 'https://analytics.example.com/',
  ANALYTICS_API_KEY: 'k',
  NOTIFICATIONS_URL: 'https://notify.example.com',
  NOTIFICATIONS_TOKEN: 't',
  AUDIT_URL: 'https://audit.example.com',
  AUDIT_API_KEY: 'a',
};

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('configuration', () => {
  it('nothing configured: simulated upstreams, loopback only, defaults', () => {
    const config = loadConfig({});
    expect(config.upstreams).toBeNull();
    expect(config.host).toBe('127.0.0.1');
    expect(config.port).toBe(4000);
    expect(config.tuning.identity).toMatchObject({ timeoutMs: 1000, connectTimeoutMs: 1000, connections: 32, retryMaxAttempts: 3, breakerFailureRatio: 0.5, rateLimitPerSec: 40 });
    expect(config.requestDeadlineMs).toBe(3000);
    expect(config.redis).toBeNull();
  });

  it('every policy is configurable per source', () => {
    const config = loadConfig({ ANALYTICS_TIMEOUT_MS: '750', ANALYTICS_RATE_LIMIT_PER_SEC: '12.5', ANALYTICS_BREAKER_MIN_CALLS: '3', REDIS_URL: 'redis://127.0.0.1:6379/2' });
    expect(config.tuning.analytics).toMatchObject({ timeoutMs: 750, rateLimitPerSec: 12.5, breakerMinCalls: 3 });
    expect(config.tuning.identity.timeoutMs).toBe(1000);
    expect(config.redis).toEqual({ url: 'redis://127.0.0.1:6379/2', keyPrefix: 'gw:' });
  });

  it('cache: on by default with per-entity windows, each configurable; bad values named', () => {
    const defaults = loadConfig({}).cache;
    expect(defaults).toMatchObject({ enabled: true, l1MaxBytes: 16 * 1024 * 1024, l2TimeoutMs: 250, negativeTtlMs: 10_000, batchWindowMs: 2, responsesMaxBytes: 4 * 1024 * 1024 });
    expect(defaults.entities['identity.user']).toEqual({ ttlMs: 60_000, staleWhileRevalidateMs: 300_000, staleIfErrorMs: 3_600_000 });
    const config = loadConfig({ CACHE_ENABLED: 'false', CACHE_L1_MAX_BYTES: '1048576', CACHE_ANALYTICS_METRICS_TTL_MS: '5000', CACHE_NOTIFICATIONS_PAGE_STALE_IF_ERROR_MS: '0' });
    expect(config.cache.enabled).toBe(false);
    expect(config.cache.l1MaxBytes).toBe(1_048_576);
    expect(config.cache.entities['analytics.metrics']!.ttlMs).toBe(5000);
    expect(config.cache.entities['notifications.page']!.staleIfErrorMs).toBe(0);
    expect(config.cache.entities['identity.user']!.ttlMs).toBe(60_000);
    expect(problems({ CACHE_ENABLED: 'yes', CACHE_IDENTITY_USER_TTL_MS: '0', CACHE_L1_MAX_BYTES: 'lots' })).toEqual([
      'CACHE_ENABLED must be true or false (got "yes")',
      'CACHE_L1_MAX_BYTES must be a number (got "lots")',
      'CACHE_IDENTITY_USER_TTL_MS must be at least 1 (got "0")',
    ]);
  });

  it('everything configured: real upstreams, trailing slashes trimmed, listens on all interfaces', () => {
    const config = loadConfig(ALL);
    expect(config.upstreams?.analytics.url).toBe('https://analytics.example.com');
    expect(config.upstreams?.identity).toEqual({ url: ALL.IDENTITY_URL, clientId: 'id', clientSecret: 'secret', audience: ALL.IDENTITY_AUDIENCE });
    // IPv6 and IPv4: an IPv6-only cluster's probes were refused on 0.0.0.0.
    expect(config.host).toBe('::');
  });

  it('some upstreams configured and some not: refuses, naming every missing variable', () => {
    const [problem] = problems({ ANALYTICS_URL: 'https://a.example.com', ANALYTICS_API_KEY: 'k', IDENTITY_URL: 'https://i.example.com' });
    expect(problem).toMatch(/some upstreams are configured/);
    expect(problem).toContain('IDENTITY_CLIENT_ID, IDENTITY_CLIENT_SECRET, IDENTITY_AUDIENCE, NOTIFICATIONS_URL, NOTIFICATIONS_TOKEN, AUDIT_URL, AUDIT_API_KEY');
    expect(problem).not.toContain('ANALYTICS');
  });

  it('a URL without its credential is refused too', () => {
    const { AUDIT_API_KEY: _, ...rest } = ALL;
    expect(problems(rest)[0]).toMatch(/Missing: AUDIT_API_KEY$/);
  });

  it('production never runs on simulated upstreams and needs a JWT secret', () => {
    const found = problems({ NODE_ENV: 'production' });
    expect(found[0]).toMatch(/NODE_ENV=production never runs on simulated upstreams.*Missing: IDENTITY_URL/);
    expect(found[1]).toBe('AUTH_JWT_SECRET or AUTH_JWKS_URL is required when NODE_ENV=production');
    expect(loadConfig({ ...ALL, NODE_ENV: 'production', AUTH_JWT_SECRET: 'x'.repeat(32) }).production).toBe(true);
  });

  it('bad values stop the start with a message naming the variable', () => {
    expect(problems({ ANALYTICS_URL: 'not a url' })[0]).toMatch(/^ANALYTICS_URL must be an http\(s\) URL/);
    expect(problems({ IDENTITY_URL: 'ftp://x.example.com' })[0]).toMatch(/^IDENTITY_URL /);
    expect(problems({ ANALYTICS_TIMEOUT_MS: '-5' })[0]).toBe('ANALYTICS_TIMEOUT_MS must be at least 1 (got "-5")');
    expect(problems({ NOTIFICATIONS_CONNECTIONS: 'many' })[0]).toMatch(/^NOTIFICATIONS_CONNECTIONS must be a number/);
    expect(problems({ PORT: '70000' })[0]).toMatch(/^PORT must be at most 65535/);
    expect(problems({ LOG_LEVEL: 'loud' })[0]).toMatch(/^LOG_LEVEL /);
    expect(problems({ ANALYTICS_BREAKER_FAILURE_RATIO: '1.5' })[0]).toBe('ANALYTICS_BREAKER_FAILURE_RATIO must be at most 1 (got "1.5")');
    expect(problems({ NOTIFICATIONS_RATE_LIMIT_PER_SEC: '0' })[0]).toMatch(/^NOTIFICATIONS_RATE_LIMIT_PER_SEC must be at least 0.1/);
    expect(problems({ IDENTITY_RETRY_MAX_ATTEMPTS: '2.5' })[0]).toMatch(/^IDENTITY_RETRY_MAX_ATTEMPTS must be a whole number/);
    expect(problems({ AUDIT_RETRY_BASE_DELAY_MS: '5000', AUDIT_RETRY_MAX_DELAY_MS: '1000' })[0]).toBe('AUDIT_RETRY_BASE_DELAY_MS must not exceed AUDIT_RETRY_MAX_DELAY_MS');
    expect(problems({ REQUEST_DEADLINE_MS: '10' })[0]).toMatch(/^REQUEST_DEADLINE_MS must be at least 100/);
    // A line that forms only past the refusals would never form.
    expect(problems({ LOAD_QUEUE_AT_ENTITY_READS: '20000' })[0]).toBe('LOAD_QUEUE_AT_ENTITY_READS (20000) must be below LOAD_SHED_MAX_ENTITY_READS (20000), or 0 for no line');
    expect(loadConfig({ LOAD_QUEUE_AT_ENTITY_READS: '20000', LOAD_SHED_MAX_ENTITY_READS: '0' }).ops.admission.queueAtEntityReads).toBe(20_000);
    expect(loadConfig({}).ops.admission).toEqual({ queueAtEntityReads: 3000, maxWaitMs: 1000 });
    expect(problems({ REDIS_URL: 'http://localhost:6379' })[0]).toMatch(/^REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL/);
    // A secret's value is never echoed back.
    const short = problems({ AUTH_JWT_SECRET: 'short-secret' })[0]!;
    expect(short).toMatch(/^AUTH_JWT_SECRET must be at least 32 characters/);
    expect(short).not.toContain('short-secret');
  });

  it('REDIS_CLUSTER_NODES: host:port seeds, any of them a redis:// or rediss:// URL whose user and password reach every node; passwords never echoed', () => {
    expect(loadConfig({ REDIS_CLUSTER_NODES: '10.0.0.1:7000,10.0.0.2:7001' }).redis).toEqual({
      url: 'redis://10.0.0.1:7000',
      keyPrefix: 'gw:',
      clusterNodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
      ],
    });
    // Given once (on any seed), they are the cluster's: the first seed's URL carries them to the client.
    expect(loadConfig({ REDIS_CLUSTER_NODES: 'node1.cache.example:6379,rediss://app:s%40cret@node2.cache.example:6379' }).redis).toMatchObject({
      url: 'rediss://app:s%40cret@node1.cache.example:6379',
      clusterNodes: [
        { host: 'node1.cache.example', port: 6379 },
        { host: 'node2.cache.example', port: 6379 },
      ],
    });
    expect(problems({ REDIS_CLUSTER_NODES: 'node1:6379,node2' })[0]).toMatch(/^REDIS_CLUSTER_NODES must be host:port,host:port,… .*; "node2" is not/);
    expect(problems({ REDIS_CLUSTER_NODES: 'rediss://node1:6379/1' })[0]).toMatch(/"rediss:\/\/node1:6379\/1" is not/);
    const differ = problems({ REDIS_CLUSTER_NODES: 'redis://:first-secret@a:1,redis://:second-secret@b:2' })[0]!;
    expect(differ).toMatch(/^REDIS_CLUSTER_NODES every node is reached with the same scheme, user and password/);
    const schemeless = problems({ REDIS_CLUSTER_NODES: 'app:third-secret@a:1' })[0]!;
    for (const message of [differ, schemeless, problems({ REDIS_URL: 'redis//:fourth-secret@a:1' })[0]!])
      expect(message).not.toMatch(/first-secret|second-secret|third-secret|fourth-secret/);
    expect(problems({ REDIS_CLUSTER_NODES: 'a:1', REDIS_URL: 'redis://b:2' })[0]).toBe(
      'set one of REDIS_URL (one Redis), REDIS_CLUSTER_NODES (a Redis Cluster) or REDIS_SENTINELS (Redis behind Sentinel), not more',
    );
  });

  it('an empty variable counts as unset', () => {
    expect(loadConfig({ IDENTITY_URL: '', PORT: '' }).upstreams).toBeNull();
  });
});

it('docs/configuration.md lists every variable exactly once', () => {
  const rows = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8')
    .split('\n')
    .flatMap((line) => /^\| `([A-Z0-9_]+)` \|/.exec(line)?.[1] ?? []);
  const names = Object.keys(envSchema.shape);
  expect(rows.length).toBe(names.length);
  expect([...rows].sort()).toEqual([...names].sort());
});
