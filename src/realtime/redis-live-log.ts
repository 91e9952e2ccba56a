import type { RedisSettings } from '../config-types.js';
import type { Logger } from '../logger.js';
import { declareLuaCommand, newRedisClient, SILENT_CONNECTION_MS, silentAfterBlocking, withLuaCommand, type RedisClient } from '../redis.js';
import type { LiveLog, LiveLogReader } from './live-log.js';

/**
 * Appends one event, at most once per `once` key when one is given. The key
 * is taken only once the entry is in, and a failed XADD (the key holding
 * another type) takes back its number: a script is not rolled back on an
 * error, so a key taken first would have stayed taken, and the webhook's
 * retry would have found it and announced nothing.
 * Each entry carries the next number of a counter, so a reader that finds a
 * number skipped knows entries were trimmed before it read them.
 * KEYS: the stream, the counter, the once key (the stream again when there is none).
 * ARGV: entries kept (approximately), channel, payload, once TTL in ms ('' for none).
 */
const APPEND = `
if ARGV[4] ~= '' and redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
local n = redis.call('INCR', KEYS[2])
local added = redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'c', ARGV[2], 'd', ARGV[3], 'n', n)
if type(added) == 'table' and added.err then
  redis.call('DECR', KEYS[2])
  return added
end
if ARGV[4] ~= '' then redis.call('SET', KEYS[3], '1', 'PX', ARGV[4]) end
return 1`;
declareLuaCommand('appendLiveEvent', { numberOfKeys: 3, lua: APPEND });

type WithAppend = RedisClient & {
  appendLiveEvent(stream: string, counter: string, onceKey: string, kept: number, channel: string, payload: string, onceTtlMs: number | ''): Promise<number>;
};

/** Entries read at most per XREAD, and how long one waits for new entries before asking again. */
const READ_COUNT = 500;
const BLOCK_MS = 5000;

/**
 * Live events in one Redis stream (`{<prefix>live}:events`, about `kept`
 * entries), read by every instance from where it left off. Redis pub/sub,
 * which this replaces, delivers at most once: an event published while an
 * instance's pub/sub connection was coming back after a Redis outage never
 * reached its subscribers (the chaos run saw it: webhooks refused during the
 * outage are retried and processed the moment Redis is back). A stream is
 * read from the last id this instance saw, so it misses nothing that is
 * still kept; one away for longer than `kept` events says so in one line.
 * The once keys sit in the stream's hash slot, so the append is one script
 * on a Redis Cluster too.
 */
export class RedisLiveLog implements LiveLog {
  private readonly writer: WithAppend;
  private readonly reader: RedisClient;
  private readonly stream: string;
  private readonly slot: string;
  private closed = false;
  /** When this instance started (performance.now()): where it starts reading, in Redis's clock. */
  private readonly createdAt = performance.now();
  /** The counter of the last entry read: one further on than the next says entries were trimmed unread. */
  private lastNumber: number | undefined;
  /** The id of the last entry this instance read: undefined until it knows where to start (see position). */
  private last: string | undefined;
  private positioned: () => void = () => undefined;
  /** Settles once `last` is first known: an event appended after it is read. */
  private readonly started = new Promise<void>((resolve) => (this.positioned = resolve));

  constructor(
    redis: RedisSettings,
    private readonly kept: number,
    private readonly logger: Logger,
  ) {
    this.slot = `{${redis.keyPrefix}live}`;
    this.stream = `${this.slot}:events`;
    // Waits for a connection being made (a process just started), not for an outage: past one reconnection or 2 s,
    // the caller (a webhook job, a change feed pass) fails and tries again later. A script that ran after its
    // timeout did announce its event, and the retry's once key says so.
    this.writer = withLuaCommand<WithAppend>(
      newRedisClient(redis, { connectionName: 'gateway:live-writer', maxRetriesPerRequest: 1, commandTimeout: 2000, socketTimeout: SILENT_CONNECTION_MS }),
      'appendLiveEvent',
    );
    // Its XREAD waits for Redis however long it is away (ioredis sends it again on reconnecting, from the same id).
    this.reader = newRedisClient(redis, { connectionName: 'gateway:live-reader', maxRetriesPerRequest: null, socketTimeout: silentAfterBlocking(BLOCK_MS) });
    for (const c of [this.writer, this.reader]) c.on('error', () => undefined);
  }

  async append(channel: string, payload: unknown, once?: { key: string; ttlMs: number }): Promise<boolean> {
    const onceKey = once ? `${this.slot}:once:${once.key}` : this.stream;
    const added = await this.writer.appendLiveEvent(this.stream, `${this.slot}:counter`, onceKey, this.kept, channel, JSON.stringify(payload), once ? once.ttlMs : '');
    return added === 1;
  }

  read(deliver: LiveLogReader): void {
    void this.readLoop(deliver);
  }

  reading(): Promise<void> {
    return this.started;
  }

  close(): void {
    this.closed = true;
    this.writer.disconnect();
    this.reader.disconnect();
  }

  private async readLoop(deliver: LiveLogReader): Promise<void> {
    let failing: string | undefined;
    while (!this.closed) {
      try {
        const from = this.last ?? (await this.position());
        const reply = await this.reader.xread('COUNT', READ_COUNT, 'BLOCK', BLOCK_MS, 'STREAMS', this.stream, from);
        if (failing !== undefined) this.logger.info({ stream: this.stream }, 'Reading live events from Redis again');
        failing = undefined;
        if (reply === null) await this.noticeGoneBack();
        for (const [, entries] of reply ?? []) {
          for (const [id, fields] of entries) {
            this.last = id;
            const [c, channel, d, data] = fields;
            if (c !== 'c' || d !== 'd' || channel === undefined || data === undefined) continue;
            const number = entryNumber(fields);
            if (number !== undefined) this.noticeSkipped(number);
            deliver(channel, () => JSON.parse(data) as unknown);
          }
        }
      } catch (err) {
        if (this.closed) return;
        // Not an outage (the read waits those out) but Redis refusing it: the key holds something else (WRONGTYPE),
        // a proxy refuses XREAD, an ACL. Said once per cause, read again from the same id every 0.5 s.
        const message = (err as Error).message;
        if (message !== failing) {
          this.logger.warn(
            { stream: this.stream, err: message },
            'Reading live events from Redis failed: subscribers on this instance hear nothing until it succeeds (tried again every 0.5 s)',
          );
        }
        failing = message;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /**
   * Where this instance starts reading: from when it started, in Redis's clock (Redis's TIME less this instance's
   * age), so an event appended while its first read waited for Redis (a start during an outage, webhooks retried
   * the moment Redis is back) reaches the subscribers who came meanwhile. What came before is no one's here. Before,
   * it began at the stream's end when the read first got through, and such an event was no one's. Entries ahead of
   * Redis's clock (its clock went back) are not read again: it starts at their end.
   */
  private async position(): Promise<string> {
    const [[sec, usec], [end]] = await Promise.all([this.reader.time(), this.reader.xrevrange(this.stream, '+', '-', 'COUNT', 1)]);
    const redisNowMs = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
    const startedMs = Math.max(0, Math.floor(redisNowMs - (performance.now() - this.createdAt)));
    const endMs = end ? Number(end[0].split('-')[0]) : 0;
    if (end && endMs >= startedMs && endMs <= redisNowMs + 1000) {
      this.last = `${startedMs}-0`;
      this.lastNumber = undefined;
    } else {
      this.last = end?.[0] ?? '0-0';
      this.lastNumber = end ? entryNumber(end[1]) : undefined;
    }
    this.positioned();
    return this.last;
  }

  /**
   * After a read that waited BLOCK_MS for nothing: whether the stream now ends before the last id read here.
   * Entry ids are Redis's clock in ms: a Redis restored with its clock behind this instance's last id (another
   * machine, a clock set back) appends entries that a read from that id never returns, and this instance's
   * subscribers would hear nothing until the clock caught up. It reads on from the stream's end instead.
   */
  private async noticeGoneBack(): Promise<void> {
    const [end] = await this.reader.xrevrange(this.stream, '+', '-', 'COUNT', 1);
    const last = this.last;
    if (end === undefined || last === undefined || !idBefore(end[0], last)) return;
    this.logger.warn(
      { stream: this.stream, streamEnd: end[0], lastRead: last },
      "The live-event stream ends before the last entry this instance read (Redis's clock went back, or it was restored elsewhere): reading on from its end; events appended since then were missed here",
    );
    this.last = end[0];
    this.lastNumber = entryNumber(end[1]);
  }

  /** Entries this instance never read: trimmed while it was away for more than `kept` events. One line a gap. */
  private noticeSkipped(number: number): void {
    const before = this.lastNumber;
    this.lastNumber = number;
    if (before === undefined || number === before + 1) return;
    if (number <= before) {
      // Redis restarted without its data (or from an older snapshot) and counts again from a lower number.
      this.logger.warn(
        { stream: this.stream, number, lastNumber: before },
        "Redis's live-event counter went back (Redis restarted without its data, or from an older snapshot): events appended before that which this instance had not read yet are lost to its subscribers",
      );
      return;
    }
    this.logger.warn(
      { stream: this.stream, missed: number - before - 1, kept: this.kept },
      `${number - before - 1} live events were trimmed before this instance read them (its connection to Redis was away for more than LIVE_EVENTS_KEPT events): its subscribers missed them`,
    );
  }
}

/** Whether stream id `a` ("<ms>-<seq>") comes before `b`. */
function idBefore(a: string, b: string): boolean {
  const [aMs, aSeq] = a.split('-').map(BigInt);
  const [bMs, bSeq] = b.split('-').map(BigInt);
  return aMs! < bMs! || (aMs === bMs && aSeq! < bSeq!);
}

/** An entry's counter number (its fields c, d, n), or undefined for an entry not of ours. */
function entryNumber(fields: string[]): number | undefined {
  const n = fields[4] === 'n' ? Number(fields[5]) : NaN;
  return Number.isFinite(n) ? n : undefined;
}
