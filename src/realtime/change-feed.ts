import { CHANGE_FEED_OVERLAP_MS_DEFAULT, type ChangeFeedSettings } from '../config-types.js';
import type { Logger } from '../logger.js';
import type { RedisConnection } from '../redis.js';
import { SourceError } from '../errors.js';
import { Deadline } from '../resilience/deadline.js';
import type { Caches } from '../sources/caches.js';
import type { SourceChangeFeed } from '../sources/define-source.js';
import type { HttpSource } from '../sources/http-source.js';
import type { ChangedRecord } from '../sources/models.js';
import type { LiveEvents, LiveTopic } from './live-events.js';
import { PollerLock } from './poller-lock.js';

/**
 * Where the feed has got to: the latest `updated_at` applied (`at`), and the
 * changes applied within the overlap before it. Each pull asks from `at` minus
 * the overlap, so those come back and are skipped by id and instant; a change
 * the vendor listed late, under an earlier instant than `at`, does not.
 */
export interface HighWaterMark {
  at: string;
  /** Ids applied at exactly `at`: all a mark held before the overlap, still written for instances that read only it. */
  ids: string[];
  /** Changes applied from `at` minus the overlap on, as [id, `updated_at` in ms], the latest of each id. */
  recent: [string, number][];
}

/** At most this many pages a pass; a backlog larger than that is worked through over the next passes. */
const MAX_PAGES_PER_PASS = 10;
/**
 * The same for a vendor whose list is not in change order: its mark can move
 * only once every page from one bound was read, so a pass reads further (a
 * backlog past it is read again from the start next pass, never skipped).
 */
const MAX_PAGES_PER_UNSORTED_PASS = 100;
/** With no mark yet (a first start), changes from this far back are picked up: a vendor's clock may run behind ours. */
const FIRST_MARK_LOOKBACK_MS = 60_000;
/** Changes a mark remembers at most: past it (thousands of changes within one overlap) the oldest are forgotten and, listed again, applied again. */
const MAX_RECENT = 5_000;

export type PassOutcome = 'applied' | 'idle' | 'standby' | 'failed';

export interface ChangeFeedOptions {
  source: string;
  feed: SourceChangeFeed<HttpSource>;
  client: HttpSource;
  settings: ChangeFeedSettings;
  caches: Caches;
  live: LiveEvents;
  redis: RedisConnection | null;
  logger: Logger;
  /** Each page's upstream call gets a deadline of this. */
  deadlineMs: number;
  /** Each pass's outcome and the changes it applied, for metrics. */
  onPass?: (source: string, outcome: PassOutcome, applied: number) => void;
  /** The vendor refused the filter itself (400/422: it has none): polling stops and changes are found another way. */
  onUnsupported?: (source: string) => void;
}

/**
 * Incremental pulls from a vendor without webhooks: every interval, the
 * records changed at or after the high-water mark, oldest first. Each one
 * drops its cache entries on every instance and is published with the new
 * record; the mark (in Redis when configured) moves only after that, so a
 * failed pass is repeated, never skipped. One poller across instances: the
 * one holding a Redis lock; the others stand by and take over when it goes.
 */
export class ChangeFeedPoller {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private closed = false;
  private readonly lock: PollerLock;
  /** The mark when Redis is not configured or not reachable. */
  private localMark: HighWaterMark | null = null;
  private failing = false;
  /** The vendor listed a page with more after it not oldest change first (it ignores `sort`): from then on, a pass holds its bound. */
  private unsorted = false;

  constructor(private readonly options: ChangeFeedOptions) {
    this.lock = new PollerLock(options.redis, `changes:${options.source}:poller`, Math.max(3 * options.settings.intervalMs, 2_000));
  }

  private get markKey(): string | null {
    return this.options.redis?.key(`changes:${this.options.source}:mark`) ?? null;
  }

  start(): void {
    const { source, settings, logger, redis } = this.options;
    logger.info(
      { source, intervalMs: settings.intervalMs },
      `Change feed: ${source}'s changes pulled every ${settings.intervalMs} ms${redis ? ' (one poller across instances, mark in Redis)' : ''}`,
    );
    this.schedule();
  }

  private schedule(): void {
    if (this.closed) return;
    // A timeout per pass, not an interval: a slow pass (a rate-limited vendor) never overlaps the next.
    this.timer = setTimeout(() => {
      this.running = this.pass().finally(() => this.schedule());
    }, this.options.settings.intervalMs);
    this.timer.unref();
  }

  /** One pass: the changes since the mark, applied, the mark moved. Exposed for tests and for a pass on demand. */
  async pass(): Promise<PassOutcome> {
    const { source, logger, onPass } = this.options;
    let applied = 0;
    try {
      if (!(await this.lock.hold())) {
        onPass?.(source, 'standby', 0);
        return 'standby';
      }
      applied = await this.pullAndApply();
      if (this.failing) logger.info({ source }, `Change feed of ${source} is pulling again`);
      this.failing = false;
      const outcome = applied > 0 ? 'applied' : 'idle';
      onPass?.(source, outcome, applied);
      return outcome;
    } catch (err) {
      const refused = err instanceof SourceError && (err.status === 400 || err.status === 422);
      if ((refused || err instanceof FilterIgnored) && this.options.onUnsupported) {
        logger.warn(
          { source, ...(err instanceof SourceError ? { status: err.status, detail: err.detail } : {}) },
          err instanceof SourceError
            ? `${source} refused its change filter (HTTP ${err.status}): it has none, so polling stops and changes are found by hashing the records the cache refreshes`
            : `${source} ignores its change filter (${(err as Error).message}): polling stops and changes are found by hashing the records the cache refreshes`,
        );
        this.closed = true;
        this.options.onUnsupported(source);
        onPass?.(source, 'failed', applied);
        return 'failed';
      }
      // One line when it starts failing, not one per interval; the mark did not move, so the next pass repeats this one.
      if (!this.failing) logger.warn({ source, err: (err as Error).message, applied }, `Change feed of ${source} failed; the pass is repeated every interval until it succeeds`);
      this.failing = true;
      onPass?.(source, 'failed', applied);
      return 'failed';
    }
  }

  private async pullAndApply(): Promise<number> {
    const { feed, client, deadlineMs } = this.options;
    const overlapMs = this.options.settings.overlapMs ?? CHANGE_FEED_OVERLAP_MS_DEFAULT;
    let mark = await this.readMark();
    let page = 0;
    let applied = 0;
    // Once a pass, from the overlap before the mark; once the mark has moved, from the mark itself, so a backlog is
    // read once, not its overlap again after every page.
    let lookBack = overlapMs > 0;
    // Where the pages are read from. In change order, it follows the mark; otherwise it holds for the pass (see below).
    let bound = mark.at;
    for (let n = 0; n < (this.unsorted ? MAX_PAGES_PER_UNSORTED_PASS : MAX_PAGES_PER_PASS); n++) {
      const deadline = Deadline.after(deadlineMs);
      const markMs = Date.parse(mark.at);
      const since = lookBack ? new Date(Date.parse(bound) - overlapMs).toISOString() : bound;
      let result;
      try {
        result = await feed.pull!(client, since, page, deadline);
      } catch (err) {
        // Past the first page, a refusal is the vendor's paging limit (Auth0 pages through 1,000 results at most), not a
        // filter it lacks: a failed pass, repeated, and polling goes on.
        if (page > 0 && err instanceof SourceError && (err.status === 400 || err.status === 422)) {
          throw new Error(`page ${page} of the changes was refused (${err.detail ?? err.message}): past the vendor's paging limit`, { cause: err });
        }
        throw err;
      } finally {
        deadline.dispose();
      }
      // A user last changed before the instant asked from: the vendor listed without the filter (a proxy stripped it).
      const sinceMs = Date.parse(since);
      if (result.records.some((r) => r.updatedAt !== null && Date.parse(r.updatedAt) < sinceMs)) throw new FilterIgnored(since);
      const known = new Map(mark.recent);
      const fresh = latestOfEach(result.records.filter((r) => !alreadyApplied(known, r)));
      await this.apply(fresh);
      applied += fresh.length;
      const next = advance(mark, fresh, overlapMs);
      if (result.more && !this.unsorted && !inChangeOrder(result.records)) this.noticeUnsorted(page);
      if (this.unsorted) {
        // Out of change order, a later page may hold changes older than this one's latest: moving the bound past
        // them would skip them for good. The pages of this bound are read to the end, then the mark moves, once.
        mark = next;
        if (!result.more) {
          await this.writeMark(mark);
          break;
        }
        page++;
        continue;
      }
      if (next !== mark) await this.writeMark(next);
      if (!result.more) break;
      // Moved on: the next page is the first after the new bound. Not moved (a page of one instant, or of changes
      // already applied): the next page of the same bound.
      const moved = Date.parse(next.at) > markMs;
      page = moved ? 0 : page + 1;
      if (moved) lookBack = false;
      mark = next;
      bound = mark.at;
    }
    return applied;
  }

  private noticeUnsorted(page: number): void {
    const { source, logger } = this.options;
    this.unsorted = true;
    logger.warn(
      { source, page },
      `${source} listed its changes not oldest change first (page ${page}, more after it): it ignores the sort asked, so each pass reads every page from one bound before the mark moves (up to ${MAX_PAGES_PER_UNSORTED_PASS} pages)`,
    );
  }

  private async apply(records: ChangedRecord<unknown>[]): Promise<void> {
    if (records.length === 0) return;
    const { feed, caches, live } = this.options;
    const ids = [...new Set(records.map((r) => r.id))];
    await Promise.all([caches.entity(feed.entity).invalidate(ids), ...feed.alsoDrop.map((d) => caches.entity(d.entity).invalidate(d.groups))]);
    // After the invalidation: a subscriber that reads more of the record gets the new data.
    // Not announced (Redis away): the pass fails before its mark moves, and the next pass announces them.
    await Promise.all(records.map((r) => live.publish(feed.topic as LiveTopic, r.id, r.value as never)));
  }

  private async readMark(): Promise<HighWaterMark> {
    const key = this.markKey;
    if (key && this.options.redis!.available) {
      try {
        const stored = parseMark(await this.options.redis!.client.get(key));
        if (stored) return stored;
      } catch {
        // Redis went away mid-pass: this instance's own mark, if it has one.
      }
    }
    return (this.localMark ??= { at: new Date(Date.now() - FIRST_MARK_LOOKBACK_MS).toISOString(), ids: [], recent: [] });
  }

  private async writeMark(mark: HighWaterMark): Promise<void> {
    this.localMark = mark;
    const key = this.markKey;
    if (key && this.options.redis!.available) await this.options.redis!.client.set(key, JSON.stringify(mark));
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
    await this.lock.release();
  }
}

/** The vendor answered a change filter with records it does not match: it has none, as one that refuses it. */
class FilterIgnored extends Error {
  constructor(since: string) {
    super(`it listed users last changed before ${since}, the instant asked from`);
  }
}

/** Whether the readable instants of a page never go back (equal ones may come in any order). */
function inChangeOrder(records: readonly ChangedRecord<unknown>[]): boolean {
  let last = -Infinity;
  for (const r of records) {
    const ms = r.updatedAt === null ? NaN : Date.parse(r.updatedAt);
    if (Number.isNaN(ms)) continue;
    if (ms < last) return false;
    last = ms;
  }
  return true;
}

/** One record an id: a vendor's replica may list a user twice in a page. The one changed last, or else the last listed. */
function latestOfEach(records: ChangedRecord<unknown>[]): ChangedRecord<unknown>[] {
  const byId = new Map<string, ChangedRecord<unknown>>();
  for (const r of records) {
    const had = byId.get(r.id);
    if (had !== undefined && had.updatedAt !== null && r.updatedAt !== null && Date.parse(had.updatedAt) > Date.parse(r.updatedAt)) continue;
    byId.set(r.id, r);
  }
  return byId.size === records.length ? records : [...byId.values()];
}

/** Whether this change was applied already: the mark holds its id at this instant or a later one. Unreadable instants never were. */
function alreadyApplied(known: ReadonlyMap<string, number>, record: ChangedRecord<unknown>): boolean {
  const at = known.get(record.id);
  return at !== undefined && record.updatedAt !== null && at >= Date.parse(record.updatedAt);
}

/**
 * The mark after applying these records: the latest readable instant, and the
 * changes applied from it minus the overlap on (the latest of each id). A
 * record whose `updated_at` could not be read is applied but never moves it.
 */
export function advance(mark: HighWaterMark, records: readonly ChangedRecord<unknown>[], overlapMs: number): HighWaterMark {
  const markMs = Date.parse(mark.at);
  let latestMs = markMs;
  let latest = mark.at;
  const recent = new Map(mark.recent);
  let readable = 0;
  for (const r of records) {
    const ms = r.updatedAt === null ? NaN : Date.parse(r.updatedAt);
    if (Number.isNaN(ms)) continue;
    readable++;
    const known = recent.get(r.id);
    if (known === undefined || known < ms) recent.set(r.id, ms);
    if (ms > latestMs) {
      latestMs = ms;
      latest = r.updatedAt!;
    }
  }
  if (readable === 0) return mark;
  // Compared as instants: the vendor may write one instant two ways (…00Z, …00.000Z).
  const kept = [...recent].filter(([, ms]) => ms >= latestMs - overlapMs);
  if (kept.length > MAX_RECENT) kept.sort((a, b) => b[1] - a[1]).length = MAX_RECENT;
  return { at: latestMs === markMs ? mark.at : latest, ids: kept.filter(([, ms]) => ms === latestMs).map(([id]) => id), recent: kept };
}

/** A stored mark; one written before the overlap (no `recent`) stands for its ids at its instant. */
function parseMark(text: string | null): HighWaterMark | null {
  if (!text) return null;
  try {
    const value = JSON.parse(text) as Partial<HighWaterMark>;
    if (typeof value.at !== 'string' || Number.isNaN(Date.parse(value.at)) || !Array.isArray(value.ids) || !value.ids.every((id) => typeof id === 'string')) return null;
    const atMs = Date.parse(value.at);
    const recent = Array.isArray(value.recent)
      ? value.recent.filter((e): e is [string, number] => Array.isArray(e) && typeof e[0] === 'string' && Number.isFinite(e[1]))
      : value.ids.map((id): [string, number] => [id, atMs]);
    return { at: value.at, ids: value.ids, recent };
  } catch {
    // An unreadable mark is treated as none: the feed starts again a minute back.
  }
  return null;
}
