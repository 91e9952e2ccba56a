import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { RedisConnection } from '../src/redis.js';
import { loggedLines } from './helpers/log-lines.js';
import { describeWithRedis, TestRedis, TestSentinel } from './helpers/redis.js';
import { stackPool } from './helpers/stack.js';

/**
 * Redis behind Sentinel, as self-hosted high availability has it (Bitnami's chart, for one): the sentinels name the
 * master, and name another after a failover. There was no way to say so: REDIS_URL named one server, which after a
 * failover was a replica. REDIS_SENTINELS and REDIS_SENTINEL_MASTER now give the sentinels and the master's name.
 */
type AnyData = Record<string, any>;
const PASSWORD = 'sentinel-guarded';

describeWithRedis('Redis behind Sentinel', () => {
  const primary = new TestRedis();
  const replica = new TestRedis();
  let sentinel: TestSentinel;
  const admin: Redis[] = [];
  beforeAll(async () => {
    const auth = ['--requirepass', PASSWORD, '--masterauth', PASSWORD, '--repl-diskless-sync-delay', '0'];
    await Promise.all([primary.start(...auth), replica.start(...auth, '--replicaof', '127.0.0.1', String(primary.port))]);
    admin.push(new Redis(primary.port, { password: PASSWORD }), new Redis(replica.port, { password: PASSWORD }));
    for (let i = 0; i < 100 && !/master_link_status:up/.test(await admin[1]!.info('replication')); i++) await new Promise((r) => setTimeout(r, 100));
    sentinel = new TestSentinel('gwmaster', primary.port, PASSWORD);
    await sentinel.start();
  }, 30_000);
  afterAll(async () => {
    for (const a of admin) a.disconnect();
    await sentinel?.stop();
    await Promise.all([primary.stop(), replica.stop()]);
  });

  const settings = () =>
    loadConfig({ REDIS_SENTINELS: `redis://:${PASSWORD}@127.0.0.1:${sentinel.port}`, REDIS_SENTINEL_MASTER: 'gwmaster', REDIS_KEY_PREFIX: 'gwsentinel:' }).redis!;
  const role = async (client: Redis) => ((await client.call('ROLE')) as [string])[0];

  it('the master the sentinels name is used, with the password in the seed; the log names master and sentinels, the password hidden', async () => {
    const { logger, lines } = loggedLines('info');
    const connection = new RedisConnection(settings(), logger);
    try {
      await expect.poll(() => connection.available, { timeout: 5000 }).toBe(true);
      await connection.client.set(connection.key('where'), 'here');
      expect(await admin[0]!.get('gwsentinel:where')).toBe('here');
      expect(lines.find((l) => l.msg === 'Redis connected')!.redis).toBe(`master gwmaster of the sentinels at redis://:***@127.0.0.1:${sentinel.port}`);
    } finally {
      await connection.close();
    }
  });

  it('the whole server, through a failover the sentinels make: cached entries and a queued delivery land on the new master', async () => {
    const stack = await stackPool((o) => ({ ...o, cache: { enabled: true }, writes: { deliveryBackoffMs: 100 }, tuning: { audit: { retryMaxAttempts: 1 } } }))({
      redis: settings(),
    });
    const profile = (index: number) => stack.gql<AnyData>(`query($id: ID!) { user(id: $id) { id name } }`, { id: stack.userId(index) });
    const cached = async (client: Redis, index: number) => (await client.keys(`gwsentinel:c:identity.user*${stack.userId(index)}*`)).length;
    expect((await profile(800)).body.errors).toBeUndefined();
    await expect.poll(() => cached(admin[0]!, 800), { timeout: 3000 }).toBe(1);

    await sentinel.call('SENTINEL', 'FAILOVER', 'gwmaster');
    await expect.poll(() => role(admin[1]!), { timeout: 15_000 }).toBe('master');
    await expect.poll(() => role(admin[0]!), { timeout: 15_000 }).toBe('slave');
    // Told by the sentinels (or refused READONLY by the old master), the connections move; meanwhile requests answer.
    let index = 801;
    await expect
      .poll(
        async () => {
          index++;
          expect((await profile(index)).body.errors).toBeUndefined();
          return cached(admin[1]!, index);
        },
        { timeout: 10_000, interval: 300 },
      )
      .toBe(1);

    await stack.faults('audit', { errorRate: 1, errorCount: 1 });
    const res = await stack.gql<AnyData>(`mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { deliveries { id target state } } }`, {
      input: { userId: stack.userId(860), nickname: 'after-a-sentinel-failover' },
    });
    const audit = (res.body.data!.updateProfile.deliveries as AnyData[]).find((d) => d.target === 'AUDIT')!;
    expect(audit.state).toBe('QUEUED');
    await expect.poll(() => admin[1]!.hget(`gwsentinel:bull:deliveries:${audit.id}`, 'finishedOn'), { timeout: 10_000 }).not.toBeNull();
    expect(stack.logs.map((l) => JSON.parse(l) as AnyData).filter((l) => l.level >= 50)).toEqual([]);
    // Said as what it was: one line naming both masters, not "unreachable" and "back" as for an outage.
    const said = stack.logs.map((l) => JSON.parse(l) as AnyData).filter((l) => /^Redis (failed over|unreachable|is back)/.test(String(l.msg)));
    expect(said.map((l) => [l.msg, l.master, l.was])).toEqual([
      ['Redis failed over: the sentinels name another master, in use now', `127.0.0.1:${replica.port}`, `127.0.0.1:${primary.port}`],
    ]);
  });

  it('a master gone with no other for the sentinels to name (they are gone too): "unreachable" after the 2 s grace, not at once', async () => {
    const lone = new TestRedis();
    await lone.start();
    const watching = new TestSentinel('gwlone', lone.port);
    await watching.start();
    const { logger, lines } = loggedLines('info');
    const connection = new RedisConnection(
      loadConfig({ REDIS_SENTINELS: `127.0.0.1:${watching.port}`, REDIS_SENTINEL_MASTER: 'gwlone', REDIS_KEY_PREFIX: 'gwlone:' }).redis!,
      logger,
    );
    try {
      await expect.poll(() => connection.available, { timeout: 5000 }).toBe(true);
      await Promise.all([watching.stop(), lone.stop()]);
      const said = () => lines.filter((l) => /^Redis (failed over|unreachable|is back)/.test(l.msg)).map((l) => l.msg.split(':')[0]);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect(said()).toEqual([]);
      await expect.poll(said, { timeout: 3000 }).toEqual(['Redis unreachable']);
    } finally {
      await connection.close();
      await Promise.all([watching.stop(), lone.stop()]);
    }
  });

  it('configuration: the master name is required, and only one way to Redis at a time', () => {
    expect(() => loadConfig({ REDIS_SENTINELS: '127.0.0.1:26379' })).toThrow(/REDIS_SENTINEL_MASTER is required with REDIS_SENTINELS/);
    expect(() => loadConfig({ REDIS_SENTINELS: '127.0.0.1:26379', REDIS_SENTINEL_MASTER: 'm', REDIS_URL: 'redis://a:1' })).toThrow(/set one of REDIS_URL .* not more/);
    expect(loadConfig({ REDIS_SENTINELS: 's1:26379,s2:26379', REDIS_SENTINEL_MASTER: 'mymaster', REDIS_SENTINEL_PASSWORD: 'x' }).redis).toEqual({
      url: 'redis://s1:26379',
      keyPrefix: 'gw:',
      sentinels: {
        nodes: [
          { host: 's1', port: 26379 },
          { host: 's2', port: 26379 },
        ],
        master: 'mymaster',
        password: 'x',
      },
    });
  });
});
