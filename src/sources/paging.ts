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

export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
