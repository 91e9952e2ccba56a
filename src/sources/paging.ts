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

/**
 * A bulk lookup at a vendor's maximum batch size: ids deduplicated, cut into
 * chunks of `max`, the chunks fetched concurrently, and each answer kept only
 * for an id its own chunk asked for. Vendors reorder, omit and add entries:
 * answers are matched to ids by id, never by position.
 */
export async function lookupInChunks<V>(ids: readonly string[], max: number, fetchChunk: (batch: string[]) => Promise<Iterable<readonly [string, V]>>): Promise<Map<string, V>> {
  const found = new Map<string, V>();
  await Promise.all(
    chunk([...new Set(ids)], max).map(async (batch) => {
      const wanted = new Set(batch);
      for (const [id, value] of await fetchChunk(batch)) if (wanted.has(id)) found.set(id, value);
    }),
  );
  return found;
}

/** For the ids of a batch that an answer with unreadable entries did not answer for: an error each (which entry was theirs cannot be told). */
export function unreadableIds<V, E>(batch: readonly string[], found: ReadonlyArray<readonly [string, V]>, error: () => E): [string, E][] {
  const answered = new Set(found.map(([id]) => id));
  return batch.filter((id) => !answered.has(id)).map((id) => [id, error()]);
}
