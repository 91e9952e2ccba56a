/**
 * Who is asking: the token's subject, and whether its scope makes it an
 * admin. A plain value at the bottom of the import graph, so the cache (which
 * keys responses on it) and the write path need not import auth.
 */
export interface Viewer {
  userId: string;
  admin: boolean;
}

/** True when the viewer may read `userId`'s private fields. */
export function canReadPrivate(viewer: Viewer, userId: string): boolean {
  return viewer.admin || viewer.userId === userId;
}
