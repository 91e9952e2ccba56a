import { hash32, hex, pick, unit } from './random.js';

/**
 * The seeded, deterministic data behind the simulated upstreams: the same seed
 * and user count give the same users, metrics, events and notifications on
 * every run. Users are made up front; each user's events and notifications are
 * made on first use (then kept, since writes change them).
 */

export interface IdentityUser {
  user_id: string;
  email: string;
  email_verified: boolean;
  name: string;
  nickname: string;
  picture: string;
  created_at: string;
  updated_at: string;
  last_login: string | null;
  logins_count: number;
}

export interface AnalyticsEvent {
  id: string;
  type: string;
  ts: number;
  properties: Record<string, unknown>;
}

export interface StoredNotification {
  id: string;
  user: string;
  title: string;
  body: string;
  channel: 'email' | 'push' | 'in_app';
  read: boolean;
  /** Unix ms; rendered as an HTTP-date by the notifications API. */
  createdMs: number;
}

const FIRST = [
  'Ada',
  'Grace',
  'Alan',
  'Edsger',
  'Barbara',
  'Donald',
  'Frances',
  'Ken',
  'Radia',
  'Linus',
  'Margaret',
  'Dennis',
  'Hedy',
  'Tim',
  'Sophie',
  'Niklaus',
  'Katherine',
  'John',
  'Shafi',
  'Leslie',
];
const LAST = [
  'Lovelace',
  'Hopper',
  'Turing',
  'Dijkstra',
  'Liskov',
  'Knuth',
  'Allen',
  'Thompson',
  'Perlman',
  'Torvalds',
  'Hamilton',
  'Ritchie',
  'Lamarr',
  'Berners-Lee',
  'Wilson',
  'Wirth',
  'Johnson',
  'McCarthy',
  'Goldwasser',
  'Lamport',
];
const EVENT_TYPES = ['page_view', 'click', 'signup_step', 'purchase', 'search', 'share'];
const PATHS = ['/', '/pricing', '/docs', '/blog', '/settings', '/checkout', '/search'];
const TITLES = ['Your weekly report', 'New comment on your post', 'Payment received', 'Security alert', 'Someone followed you', 'Reminder: finish setup'];
const CHANNELS = ['email', 'push', 'in_app'] as const;

/** Data timestamps are laid out backwards from this instant, so they never move between runs. */
export const DATA_EPOCH_MS = Date.UTC(2026, 9, 1);
const DAY_MS = 86_400_000;

export class Dataset {
  readonly users: IdentityUser[] = [];
  private readonly index = new Map<string, number>();
  private readonly events = new Map<number, AnalyticsEvent[]>();
  private readonly notifications = new Map<number, StoredNotification[]>();

  constructor(
    readonly seed = 42,
    userCount = 1200,
    /** Told every 100,000 users made (a large seed takes seconds: ~1 s per 100,000). */
    onProgress?: (made: number, total: number) => void,
  ) {
    const base = DATA_EPOCH_MS - userCount * DAY_MS;
    for (let i = 0; i < userCount; i++) {
      if (onProgress && i > 0 && i % 100_000 === 0) onProgress(i, userCount);
      const first = pick(FIRST, seed, i, 1);
      const last = pick(LAST, seed, i, 2);
      const created = base + i * DAY_MS + (hash32(seed, i, 3) % DAY_MS);
      const neverLoggedIn = unit(seed, i, 4) < 0.1;
      const user: IdentityUser = {
        user_id: `auth0|${hex(24, seed, i)}`,
        email: `${first}.${last}.${i}@example.com`.toLowerCase(),
        email_verified: unit(seed, i, 5) < 0.8,
        name: `${first} ${last}`,
        nickname: `${first.toLowerCase()}${i}`,
        picture: `https://avatars.example.com/u/${i}.png`,
        created_at: new Date(created).toISOString(),
        updated_at: new Date(created).toISOString(),
        last_login: neverLoggedIn ? null : new Date(DATA_EPOCH_MS - (hash32(seed, i, 6) % (30 * DAY_MS))).toISOString(),
        logins_count: neverLoggedIn ? 0 : 1 + (hash32(seed, i, 7) % 500),
      };
      this.index.set(user.user_id, i);
      this.users.push(user);
    }
  }

  indexOf(userId: string): number | undefined {
    return this.index.get(userId);
  }

  user(userId: string): IdentityUser | undefined {
    const i = this.index.get(userId);
    return i === undefined ? undefined : this.users[i];
  }

  /** One in fifty users has never been seen by analytics: listed in `missing`. */
  hasAnalytics(i: number): boolean {
    return i % 50 !== 49;
  }

  /** Page views and sessions in one bucket, a pure function of user, bucket and size. */
  bucket(i: number, startSec: number, hours: number): { pageViews: number; sessions: number } {
    const scale = hours >= 24 ? 40 : 4;
    const pageViews = hash32(this.seed, i, startSec, 11) % (scale + 1);
    const sessions = pageViews === 0 ? 0 : 1 + (hash32(this.seed, i, startSec, 12) % Math.max(1, Math.ceil(pageViews / 3)));
    return { pageViews, sessions };
  }

  avgSessionSeconds(i: number): number {
    return Math.round((30 + unit(this.seed, i, 13) * 600) * 10) / 10;
  }

  conversionRate(i: number): number {
    return Math.round(unit(this.seed, i, 14) * 0.2 * 10_000) / 10_000;
  }

  lastActiveSec(i: number): number {
    return Math.floor((DATA_EPOCH_MS - (hash32(this.seed, i, 15) % (14 * DAY_MS))) / 1000);
  }

  eventsOf(i: number): AnalyticsEvent[] {
    let list = this.events.get(i);
    if (!list) {
      const count = this.hasAnalytics(i) ? hash32(this.seed, i, 20) % 121 : 0;
      list = [];
      let ts = this.lastActiveSec(i) * 1000;
      for (let n = 0; n < count; n++) {
        list.push({
          id: `evt_${hex(16, this.seed, i, n, 21)}`,
          type: pick(EVENT_TYPES, this.seed, i, n, 22),
          ts,
          properties: { path: pick(PATHS, this.seed, i, n, 23), durationMs: hash32(this.seed, i, n, 24) % 60_000 },
        });
        ts -= 60_000 + (hash32(this.seed, i, n, 25) % (6 * 3_600_000));
      }
      this.events.set(i, list);
    }
    return list;
  }

  /**
   * A user's notifications, newest first. Generated from the seed on each read
   * and kept only once changed (`changeableNotificationsOf`): a run over
   * 100,000 users kept millions of objects, and whichever gateway a bench ran
   * second found them made and paid nothing for them.
   */
  notificationsOf(i: number): StoredNotification[] {
    return this.notifications.get(i) ?? this.generateNotifications(i);
  }

  /** The list the notifications API changes in place (adds to the front, marks read), kept from then on. */
  changeableNotificationsOf(i: number): StoredNotification[] {
    let list = this.notifications.get(i);
    if (!list) this.notifications.set(i, (list = this.generateNotifications(i)));
    return list;
  }

  /** How many are unread, without making the notifications of a user whose list never changed. */
  unreadCountOf(i: number): number {
    const changed = this.notifications.get(i);
    if (changed) return changed.filter((n) => !n.read).length;
    let unread = 0;
    for (let n = 0; n < this.notificationCount(i); n++) if (!this.seededRead(i, n)) unread++;
    return unread;
  }

  private notificationCount(i: number): number {
    return hash32(this.seed, i, 30) % 61;
  }

  /** Newer ones are more often unread. */
  private seededRead(i: number, n: number): boolean {
    return unit(this.seed, i, n, 35) < Math.min(0.9, 0.2 + n * 0.05);
  }

  private generateNotifications(i: number): StoredNotification[] {
    const count = this.notificationCount(i);
    const userId = this.users[i]!.user_id;
    const list: StoredNotification[] = [];
    let created = DATA_EPOCH_MS - (hash32(this.seed, i, 31) % DAY_MS);
    for (let n = 0; n < count; n++) {
      const h = hex(32, this.seed, i, n, 32);
      list.push({
        id: `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`,
        user: userId,
        title: pick(TITLES, this.seed, i, n, 33),
        body: `Notification ${n + 1} for ${this.users[i]!.name}.`,
        channel: pick(CHANNELS, this.seed, i, n, 34),
        read: this.seededRead(i, n),
        createdMs: created - (created % 1000),
      });
      created -= 3_600_000 + (hash32(this.seed, i, n, 36) % (2 * DAY_MS));
    }
    return list;
  }
}
