import type { Dataset, IdentityUser } from './dataset.js';

/**
 * Users whose `updated_at` is at or after an instant, as a vendor's index on
 * the field would find them: without a scan. A scan of 100,000 users (a
 * `Date.parse` each) took the simulator's only thread for tens of ms on every
 * pass of the server's identity change feed, and every vendor call waiting
 * behind it showed up in the bench's p99 as the gateway's.
 *
 * Seeded users are made in creation order with `updated_at` equal to
 * `created_at`, so until one changes they are sorted by it: a binary search
 * over `created_at` (which never changes) finds them. The few changed since
 * are kept apart with their new instant.
 */
export class UpdatedAtIndex {
  /** Index in the dataset → `updated_at` in ms, for users changed since seeding. */
  private readonly changed = new Map<number, number>();

  constructor(private readonly data: Dataset) {}

  /** Call after a user's `updated_at` was set. */
  touched(user: IdentityUser): void {
    const i = this.data.indexOf(user.user_id);
    if (i !== undefined) this.changed.set(i, Date.parse(user.updated_at));
  }

  /** Users updated at or after `sinceMs` (inclusive), in the vendor's own order (creation). */
  since(sinceMs: number): IdentityUser[] {
    const { users } = this.data;
    let low = 0;
    let high = users.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (Date.parse(users[mid]!.created_at) < sinceMs) low = mid + 1;
      else high = mid;
    }
    const found: number[] = [];
    for (let i = low; i < users.length; i++) if (!this.changed.has(i)) found.push(i);
    for (const [i, ms] of this.changed) if (ms >= sinceMs) found.push(i);
    return found.sort((a, b) => a - b).map((i) => users[i]!);
  }
}
