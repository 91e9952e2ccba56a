import type { IdentityUser } from './dataset.js';

/** Versions kept a user: one edited more often than this within the lag shows a newer one than a real index would. */
const VERSIONS_KEPT = 8;

/**
 * What the `searchLagMs` fault needs: each changed user's earlier versions and
 * when the change replacing each reaches the search index, so a search shows
 * users as an eventually consistent index holds them.
 */
export class SearchLag {
  private readonly versions = new Map<string, { visibleAtMs: number; before: IdentityUser }[]>();

  /** Call just before a user changes, with the user as it still is and how long the change takes to be searchable. */
  replacing(user: IdentityUser, lagMs: number, nowMs = Date.now()): void {
    const pending = (this.versions.get(user.user_id) ?? []).filter((v) => v.visibleAtMs > nowMs);
    if (lagMs > 0) pending.push({ visibleAtMs: nowMs + lagMs, before: { ...user } });
    if (pending.length > 0) this.versions.set(user.user_id, pending.slice(-VERSIONS_KEPT));
    else this.versions.delete(user.user_id);
  }

  /** The user as the index shows it: as it was before its oldest change not yet searchable. */
  view(user: IdentityUser, nowMs: number): IdentityUser {
    const pending = this.versions.get(user.user_id);
    if (!pending) return user;
    for (const v of pending) if (v.visibleAtMs > nowMs) return v.before;
    return user;
  }

  /** Whether any user's searchable version may not be its current one. */
  get any(): boolean {
    return this.versions.size > 0;
  }

  /** Ids whose searchable version may not be the current one, so may match a filter the current one does not. */
  changedIds(): IterableIterator<string> {
    return this.versions.keys();
  }
}
