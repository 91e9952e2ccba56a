import { SourceError } from '../errors.js';
import type { OffsetPage } from './models.js';

/**
 * Offset windows over page-numbered APIs (identity's 0-based pages,
 * notifications' 1-based ones). A client's `after` cursor is an offset, which
 * rarely falls on a page boundary; this finds the page size that covers the
 * window in one call, or, failing that, two consecutive pages.
 */
export interface PagePlan {
  perPage: number;
  /** 0-based page indexes to fetch, in order. */
  pages: number[];
  /** Items to drop from the start of the first page. */
  skip: number;
}

export function planPages(offset: number, count: number, maxPerPage: number): PagePlan {
  if (count < 1 || count > maxPerPage) throw new RangeError(`count must be 1..${maxPerPage}`);
  for (let perPage = count; perPage <= maxPerPage; perPage++) {
    const skip = offset % perPage;
    if (skip + count <= perPage) return { perPage, pages: [Math.floor(offset / perPage)], skip };
  }
  const first = Math.floor(offset / count);
  return { perPage: count, pages: [first, first + 1], skip: offset % count };
}

/** A window is planned at most this many times as its pages teach the vendor's page size. */
const MAX_WINDOW_PLANS = 3;
/** A listing limit learnt is trusted this long, then learnt again at the next refusal: a vendor may raise it. */
export const LISTING_LIMIT_KEPT_MS = 60 * 60 * 1000;

/**
 * What a process has learnt of one list's page size at a vendor: the most
 * `per_page` it honours (less once a page came back shorter with more after
 * it), or the size it pages by whatever is asked (once a page came back
 * longer: it ignores the parameter, renamed or stripped by a proxy). Windows
 * are planned by it, and planned again when reading one taught it something.
 */
export class VendorPageSize {
  /** per_page's maximum, or less once the vendor paged tighter. */
  private most: number;
  private fixed: number | undefined;
  /** Where the vendor stops listing, once learnt (see learnListingLimit), and when (performance.now()). */
  private learnt: { listsTo: number; at: number } | undefined;
  private learning: Promise<number | undefined> | undefined;

  constructor(
    private readonly maxPerPage: number,
    private readonly limitKeptMs = LISTING_LIMIT_KEPT_MS,
  ) {
    this.most = maxPerPage;
  }

  /**
   * The listing limit while it is trusted. Before, one learnt was kept for the life of the process: a vendor that
   * raised its limit (or a limit learnt in a bad minute) cut userList short until a restart.
   */
  private get listsTo(): number | undefined {
    if (this.learnt && performance.now() - this.learnt.at >= this.limitKeptMs) this.learnt = undefined;
    return this.learnt?.listsTo;
  }

  /** The vendor's own size when it ignores per_page, else undefined. */
  get fixedSize(): number | undefined {
    return this.fixed;
  }

  /** No item at or past this position is listed (the vendor refuses a page reaching past it), once learnt. */
  get listingLimit(): number | undefined {
    return this.listsTo;
  }

  /**
   * The pages that hold a window, and the per_page to send (at most the maximum, which a vendor that ignores it
   * ignores). Under a listing limit, the window is cut at it, and no page reaches past it but one of a vendor that
   * ignores per_page (its pages are its own); `offset` must be before it.
   */
  plan(offset: number, count: number): PagePlan & { asked: number } {
    const limit = this.listsTo;
    const n = limit === undefined ? count : Math.min(count, limit - offset);
    let plan: PagePlan;
    if (this.fixed !== undefined) plan = planFixedPages(offset, n, this.fixed);
    else if (limit === undefined) plan = planPages(offset, Math.min(n, this.most), this.most);
    else plan = planPagesWithin(offset, Math.min(n, this.most), this.most, limit);
    return { ...plan, asked: Math.min(plan.perPage, this.maxPerPage) };
  }

  /**
   * A page reaching to `refusedEnd` was refused as a client error (400), as Auth0 refuses a page reaching past the
   * first 1,000 results of a search: how far the vendor lists, found by asking whether a one-item page reaches each
   * end (`reaches`: false when refused), a bisection of about log2(refusedEnd) calls, once; several windows refused
   * at once share it. Undefined when the first item's own page is refused (the refusal was about something else).
   */
  learnListingLimit(refusedEnd: number, reaches: (end: number) => Promise<boolean>): Promise<number | undefined> {
    if (this.listsTo !== undefined && this.listsTo < refusedEnd) return Promise.resolve(this.listsTo);
    this.learning ??= bisectListingLimit(refusedEnd, reaches).then(
      (limit) => {
        this.learning = undefined;
        if (limit !== undefined) this.learnt = { listsTo: Math.min(limit, this.listsTo ?? limit), at: performance.now() };
        return limit === undefined ? undefined : this.listsTo;
      },
      (error: unknown) => {
        this.learning = undefined;
        throw error;
      },
    );
    return this.learning;
  }

  /** The vendor paged tighter than asked, at `size`. */
  tighter(size: number): void {
    this.most = Math.min(this.most, size);
  }

  /** A page held `size` where fewer were asked: its size when more followed it (`exact`), at least that when it was the last. */
  ignoresPerPage(size: number, exact: boolean): void {
    if (exact || this.fixed === undefined || this.fixed < size) this.fixed = size;
  }

  /** A page with more after it came back as asked: a fixed size larger than that is forgotten (the vendor honours per_page again). */
  honoured(asked: number): void {
    if (this.fixed !== undefined && asked < this.fixed) this.fixed = undefined;
  }

  /** `read` a window, again while what its pages taught changes its plan. */
  async window<T>(read: () => Promise<OffsetPage<T>>): Promise<OffsetPage<T>> {
    for (let planned = 1; ; planned++) {
      const most = this.most;
      const fixed = this.fixed;
      const window = await read();
      if (planned === MAX_WINDOW_PLANS) return window;
      // Its pages were not the size this plan assumed (placed where they start, they may not reach the window).
      if (this.fixed !== fixed) continue;
      // The vendor paged tighter than this plan asked, and the window fell past its page.
      if (window.items.length === 0 && window.hasNextPage && this.most < most) continue;
      return window;
    }
  }
}

/** The furthest end a one-item page reaches, below `refused` (which it does not); undefined when even 1 is refused. */
async function bisectListingLimit(refused: number, reaches: (end: number) => Promise<boolean>): Promise<number | undefined> {
  if (!(await reaches(1))) return undefined;
  let reached = 1;
  while (refused - reached > 1) {
    const mid = Math.floor((reached + refused) / 2);
    if (await reaches(mid)) reached = mid;
    else refused = mid;
  }
  return reached;
}

/**
 * planPages for a vendor that refuses a page reaching past `limit` (offset + count ≤ limit): one page ending at or
 * before it when one holds the window, else pages of the largest size up to the maximum that divides the limit, each
 * of which ends at or before it (two for Auth0's 1,000 and a per_page maximum of 100).
 */
export function planPagesWithin(offset: number, count: number, maxPerPage: number, limit: number): PagePlan {
  if (offset + count > limit) throw new RangeError(`the window [${offset}, ${offset + count}) reaches past ${limit}`);
  const plan = planPages(offset, count, maxPerPage);
  if ((plan.pages.at(-1)! + 1) * plan.perPage <= limit) return plan;
  for (let perPage = count; perPage <= maxPerPage; perPage++) {
    const skip = offset % perPage;
    if (skip + count <= perPage && offset - skip + perPage <= limit) return { perPage, pages: [Math.floor(offset / perPage)], skip };
  }
  let size = Math.min(maxPerPage, limit);
  while (limit % size !== 0) size--;
  return planFixedPages(offset, count, size);
}

/**
 * The pages holding [offset, offset + count) at a vendor that pages by `size`
 * whatever `per_page` asks (it ignores the parameter: renamed, or stripped by
 * a proxy): asking for another size would only misplace its items.
 */
export function planFixedPages(offset: number, count: number, size: number): PagePlan {
  if (count < 1 || size < 1) throw new RangeError('count and size must be at least 1');
  const pages: number[] = [];
  for (let p = Math.floor(offset / size); p <= Math.floor((offset + count - 1) / size); p++) pages.push(p);
  return { perPage: size, pages, skip: offset % size };
}

/** A window placed out of a vendor's pages. */
export interface PlacedWindow<T> {
  items: T[];
  /**
   * Where the vendor's list goes on after each item, given only when a repeated
   * item was left out (else `offset` + index + 1): past the repeats that follow it.
   */
  after?: number[];
  /** The position after the window's last item. */
  end: number;
  /** An item past the window was fetched (not one the window holds: a repeat there says nothing of more). */
  beyond: boolean;
}

/**
 * A window of `count` items from `offset`, out of fetched pages placed by where
 * each says it starts (a vendor that pages tighter than asked starts its pages
 * earlier): contiguous from `offset`, so a shorter page gives a shorter window,
 * never another window's items. An item whose id (`idOf`) is already in the
 * window is left out: a vendor's replica may repeat a row, and an item added
 * while two pages were read shifts the second page's first item onto it. A page
 * with more rows than its `size` (the vendor's page size) has its repeated rows
 * left out before it is placed: a repeat there takes no place of the vendor's,
 * and placed, it took the next page's first, whose item a client paging
 * through never saw.
 */
export function placeWindow<T>(
  pages: ReadonlyArray<{ start: number; items: readonly T[]; size?: number }>,
  offset: number,
  count: number,
  idOf: (item: T) => string,
): PlacedWindow<T> {
  const end = offset + count;
  const byIndex = new Map<number, T>();
  let past: T[] | undefined;
  for (const { start, items: rows, size } of pages) {
    const items = size !== undefined && rows.length > size ? withoutRepeats(rows, idOf) : rows;
    items.forEach((item, j) => {
      if (start + j >= end) (past ??= []).push(item);
      else if (start + j >= offset) byIndex.set(start + j, item);
    });
  }
  const items: T[] = [];
  const ids = new Set<string>();
  let after: number[] | undefined;
  let i = offset;
  for (; byIndex.has(i); i++) {
    const item = byIndex.get(i)!;
    const id = idOf(item);
    if (ids.has(id)) {
      after ??= items.map((_, k) => offset + k + 1);
      after[after.length - 1] = i + 1;
      continue;
    }
    ids.add(id);
    items.push(item);
    after?.push(i + 1);
  }
  const beyond = past !== undefined && past.some((item) => !ids.has(idOf(item)));
  return after ? { items, after, end: i, beyond } : { items, end: i, beyond };
}

/** The rows, each item once (its first row). */
function withoutRepeats<T>(rows: readonly T[], idOf: (item: T) => string): T[] {
  const seen = new Set<string>();
  return rows.filter((row) => {
    const id = idOf(row);
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/** How many different items a page holds: a vendor's replica may list one twice. */
export function distinctCount<T>(items: readonly T[], idOf: (item: T) => string): number {
  return new Set(items.map(idOf)).size;
}

export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** The statuses that say a call was too large as sent: its URL (414) or its body (413). */
export type TooLargeStatus = 413 | 414;

const isTooLarge = (status: number | undefined): status is TooLargeStatus => status === 413 || status === 414;

/**
 * How many ids one call of a bulk lookup may carry: the vendor's maximum, or
 * fewer once a call was refused as too large (414 for its URL, 413 for its
 * body), for the source's later calls.
 */
export class ChunkSize {
  constructor(
    private current: number,
    /** Told each time the size goes down, with the status that said so (for the source's log line). */
    private readonly onShrink: (max: number, status: TooLargeStatus) => void = () => undefined,
  ) {}

  get max(): number {
    return this.current;
  }

  shrinkTo(max: number, status: TooLargeStatus): void {
    if (max >= this.current) return;
    this.current = max;
    this.onShrink(max, status);
  }
}

/**
 * A bulk lookup at a vendor's maximum batch size: ids deduplicated, cut into
 * chunks of `size`, the chunks fetched concurrently, and each answer kept only
 * for an id its own chunk asked for. Vendors reorder, omit and add entries:
 * answers are matched to ids by id, never by position. A chunk refused with
 * 414 or 413 (its URL or body larger than the vendor, or a proxy before it,
 * takes) is asked again in two halves, and the smaller size is kept in `size`.
 */
export function lookupInChunks<V>(
  ids: readonly string[],
  size: number | ChunkSize,
  fetchChunk: (batch: string[]) => Promise<Iterable<readonly [string, V]>>,
): Promise<Map<string, V>> {
  const lookup = new ChunkedLookup(size, fetchChunk);
  const chunks = chunk([...new Set(ids)], typeof size === 'number' ? size : size.max);
  const calls = new Array<Promise<void>>(chunks.length);
  for (let i = 0; i < chunks.length; i++) calls[i] = lookup.run(chunks[i]!);
  return Promise.all(calls).then(lookup.answer.bind(lookup));
}

/**
 * One lookupInChunks. Promise chains, not async functions: each chunk's call is held as long as its vendor takes (see
 * SourcePolicy.execute); their reactions are bound methods, not closures made per call, whose optimized code V8 drops at
 * each full collection (bench/RESULTS.md, session 36).
 */
class ChunkedLookup<V> {
  private readonly found = new Map<string, V>();
  constructor(
    private readonly size: number | ChunkSize,
    private readonly fetchChunk: (batch: string[]) => Promise<Iterable<readonly [string, V]>>,
  ) {}

  answer(): Map<string, V> {
    return this.found;
  }

  run(batch: string[]): Promise<void> {
    return this.fetchChunk(batch).then(this.keep.bind(this, batch), this.halve.bind(this, batch));
  }

  private keep(batch: string[], answer: Iterable<readonly [string, V]>): void {
    const wanted = new Set(batch);
    for (const [id, value] of answer) if (wanted.has(id)) this.found.set(id, value);
  }

  private halve(batch: string[], error: unknown): Promise<void> {
    const { size } = this;
    if (!(size instanceof ChunkSize) || batch.length < 2 || !(error instanceof SourceError) || !isTooLarge(error.status)) throw error;
    const half = Math.ceil(batch.length / 2);
    size.shrinkTo(half, error.status);
    return Promise.all([this.run(batch.slice(0, half)), this.run(batch.slice(half))]).then(NOTHING);
  }
}

const NOTHING = (): void => undefined;

/**
 * A lookup's answers in the order of `ids`, `absent` for each id it did not answer. A loop, not `ids.map`: a closure made
 * per call has its optimized code dropped at each full collection (bench/RESULTS.md, session 36).
 */
export function inIdOrder<V, A>(ids: readonly string[], found: ReadonlyMap<string, V>, absent: A): (V | A)[] {
  const out = new Array<V | A>(ids.length);
  for (let i = 0; i < ids.length; i++) out[i] = found.get(ids[i]!) ?? absent;
  return out;
}

/**
 * Whether some id asked is named by none of a bulk answer's parts (its entries, the ids it could not read, the ids
 * it says it does not know): where the contract has an entry for each, the vendor may spell ids another way now.
 */
export function leavesOut(asked: readonly string[], ...named: ReadonlyArray<{ has(id: string): boolean }>): boolean {
  next: for (const id of asked) {
    for (const part of named) if (part.has(id)) continue next;
    return true;
  }
  return false;
}

/** For the ids of a batch that an answer with unreadable entries did not answer for: an error each (which entry was theirs cannot be told). */
export function unreadableIds<V, E>(batch: readonly string[], found: ReadonlyArray<readonly [string, V]>, error: () => E): [string, E][] {
  const answered = new Set(found.map(([id]) => id));
  return batch.filter((id) => !answered.has(id)).map((id) => [id, error()]);
}
