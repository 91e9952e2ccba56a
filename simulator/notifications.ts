import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Dataset, StoredNotification } from './dataset.js';
import { IdempotencyStore } from './idempotency-store.js';
import { json, type Reply, type UpstreamApi, type UpstreamRequest } from './simulated-server.js';
import { WebhookSender } from './webhooks.js';

/**
 * Notifications: a static bearer token, 1-based pages with an RFC 8288 Link
 * header and X-Total-Count, RFC 7231 HTTP-dates, bulk unread counts,
 * Idempotency-Key on create, 429 with Retry-After as an HTTP-date.
 */
const MAX_PER_PAGE = 100;
const MAX_IDS = 100;

const createBody = z.object({
  user: z.string().min(1),
  title: z.string().min(1).max(200),
  body: z.string().min(1).max(5000),
  channel: z.enum(['email', 'push', 'in_app']),
});
const readBody = z.object({ ids: z.array(z.string()).max(1000) });

const invalid = (message: string) => json(400, { error: 'invalid_request', message });

function render(n: StoredNotification) {
  return { id: n.id, user: n.user, title: n.title, body: n.body, channel: n.channel, read: n.read, created: new Date(n.createdMs).toUTCString() };
}

export function notificationsApi(data: Dataset, token: string): UpstreamApi {
  const idempotency = new IdempotencyStore();
  const webhooks = new WebhookSender();
  // The `readLagMs` fault: notifications made while it was set, by id, with when reads first show them.
  const showsFrom = new Map<string, number>();
  const hidden = (n: StoredNotification, now: number) => (showsFrom.get(n.id) ?? 0) > now;

  const list = (req: UpstreamRequest): Reply => {
    const userId = req.params[0]!;
    const page = Number(req.query.get('page') ?? '1');
    const asked = Number(req.query.get('per_page') ?? '30');
    if (!Number.isInteger(page) || page < 1) return invalid('page must be a positive integer');
    if (!Number.isInteger(asked) || asked < 1 || asked > MAX_PER_PAGE) return invalid(`per_page must be 1..${MAX_PER_PAGE}`);
    // A capped vendor pages at its own size and still echoes the per_page it was sent in its links.
    const perPage = req.pageCap === null ? asked : Math.min(asked, req.pageCap);
    const unread = req.query.get('unread') === 'true';
    const i = data.indexOf(userId);
    const now = Date.now();
    const all = i === undefined ? [] : showsFrom.size === 0 ? data.notificationsOf(i) : data.notificationsOf(i).filter((n) => !hidden(n, now));
    const matched = unread ? all.filter((n) => !n.read) : all;
    const items = matched.slice((page - 1) * perPage, page * perPage).map(render);

    const last = Math.max(1, Math.ceil(matched.length / perPage));
    const base = `${req.origin}/v1/users/${encodeURIComponent(userId)}/notifications?per_page=${asked}&unread=${unread}&page=`;
    const links = [`<${base}1>; rel="first"`, `<${base}${last}>; rel="last"`];
    if (page < last) links.unshift(`<${base}${page + 1}>; rel="next"`);
    if (page > 1) links.push(`<${base}${Math.min(page - 1, last)}>; rel="prev"`);
    return json(200, items, { link: links.join(', '), 'x-total-count': String(matched.length) });
  };

  const unreadCounts = (req: UpstreamRequest): Reply => {
    const raw = req.query.get('user_ids');
    if (!raw) return invalid('user_ids is required');
    const ids = raw
      .split(',')
      .map((id) => id.trim())
      .filter((id) => id !== '');
    if (ids.length > MAX_IDS) return invalid(`at most ${MAX_IDS} user_ids`);
    req.recordBatch(ids.length);
    const counts: Record<string, number> = {};
    const now = Date.now();
    for (const id of ids) {
      const i = data.indexOf(id);
      counts[id] = i === undefined ? 0 : data.unreadCountOf(i) - (showsFrom.size === 0 ? 0 : data.notificationsOf(i).filter((n) => !n.read && hidden(n, now)).length);
    }
    return json(200, { counts });
  };

  const create = (req: UpstreamRequest): Promise<Reply> =>
    idempotency.once(req, () => {
      const parsed = createBody.safeParse(req.body);
      if (!parsed.success) return invalid(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
      const i = data.indexOf(parsed.data.user);
      if (i === undefined) return json(404, { error: 'user_not_found' });
      const stored: StoredNotification = { id: randomUUID(), ...parsed.data, read: false, createdMs: Math.floor(Date.now() / 1000) * 1000 };
      data.changeableNotificationsOf(i).unshift(stored);
      const now = Date.now();
      for (const [id, at] of showsFrom) if (at <= now) showsFrom.delete(id);
      if (req.readLagMs > 0) showsFrom.set(stored.id, now + req.readLagMs);
      webhooks.emit('notification.created', req.drift(render(stored)));
      return json(201, render(stored));
    });

  const markRead = (req: UpstreamRequest): Reply => {
    const parsed = readBody.safeParse(req.body);
    if (!parsed.success) return invalid('ids must be an array of strings');
    const i = data.indexOf(req.params[0]!);
    if (i === undefined) return json(404, { error: 'user_not_found' });
    const wanted = new Set(parsed.data.ids);
    let updated = 0;
    const changed: string[] = [];
    for (const n of data.changeableNotificationsOf(i)) {
      if (wanted.has(n.id) && !n.read) {
        n.read = true;
        updated++;
        changed.push(n.id);
      }
    }
    if (changed.length > 0) webhooks.emit('notification.read', req.drift({ user: req.params[0]!, ids: changed }));
    return json(200, { updated });
  };

  return {
    name: 'notifications',
    webhooks,
    routes: [
      { method: 'GET', name: 'GET /v1/users/:id/notifications', pattern: /^\/v1\/users\/([^/]+)\/notifications$/, handler: list },
      { method: 'GET', name: 'GET /v1/unread-counts', pattern: /^\/v1\/unread-counts$/, handler: unreadCounts },
      { method: 'POST', name: 'POST /v1/notifications', pattern: /^\/v1\/notifications$/, handler: create },
      { method: 'POST', name: 'POST /v1/users/:id/notifications/read', pattern: /^\/v1\/users\/([^/]+)\/notifications\/read$/, handler: markRead },
    ],
    authenticate: (req) => (req.headers.authorization === `Bearer ${token}` ? null : json(401, { error: 'unauthorized' })),
    rateLimited: (window) => json(429, { error: 'rate_limited' }, { 'retry-after': new Date(window.resetSec * 1000).toUTCString() }),
  };
}
