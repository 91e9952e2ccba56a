import { describe, expect, it } from 'vitest';
import { notificationCursor } from '../src/resolvers/cursors.js';
import { calls, READ_ROUTES, sharedStack, stackPool, type Stack } from './helpers/stack.js';

/**
 * The messaging vendor pages by offset, so a list that changes between two
 * windows moves under an offset: a notification read while a client pages its
 * unread ones (inbox zero) made the next window skip as many, and one arriving
 * made it show the last one again. A cursor names its notification, and the
 * next window goes on after it wherever it now is.
 */
type AnyData = Record<string, any>;

const stack = sharedStack();
const stacks = stackPool();

const WINDOW = `query($id: ID!, $after: String, $unread: Boolean, $first: Int = 10) {
  user(id: $id) { notifications(first: $first, after: $after, unreadOnly: $unread) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id } } } }
}`;
const MARK_READ = `mutation($userId: ID!, $ids: [ID!]!) { markNotificationsRead(userId: $userId, ids: $ids) { status updated } }`;
const SEND = `mutation($input: SendNotificationInput!) { sendNotification(input: $input) { status notification { id } } }`;

/**
 * Users with at least `unread` unread notifications (from index 300), or, for 0, with at least 30 notifications in all
 * (from 700): no two tests share a user's list.
 */
function usersWithUnread(unread: number): number[] {
  const { dataset } = stack.upstreams;
  const found: number[] = [];
  const [from, to] = unread > 0 ? [300, 700] : [700, dataset.users.length];
  const fits = (i: number) => (unread > 0 ? dataset.notificationsOf(i).filter((n) => !n.read).length >= unread : dataset.notificationsOf(i).length >= 30);
  for (let i = from; i < to && found.length < 6; i++) if (fits(i)) found.push(i);
  return found;
}

type Window = { ids: string[]; endCursor: string; hasNextPage: boolean; cursors: string[] };

function window(index: number, after: string | null, unread = false, first = 10): Promise<Window> {
  return windowOn(stack, index, after, unread, first);
}

async function windowOn(on: Stack, index: number, after: string | null, unread = false, first = 10): Promise<Window> {
  const res = await on.gql<AnyData>(WINDOW, { id: on.userId(index), after, unread, first });
  expect(res.body.errors).toBeUndefined();
  const connection = res.body.data!.user.notifications;
  return {
    ids: connection.edges.map((e: AnyData) => e.node.id as string),
    cursors: connection.edges.map((e: AnyData) => e.cursor as string),
    endCursor: connection.pageInfo.endCursor,
    hasNextPage: connection.pageInfo.hasNextPage,
  };
}

const listCalls = async () => calls(await stack.stats('notifications'), READ_ROUTES.notificationList);

describe('a cursor of notifications holds its place while the list changes', () => {
  it('unchanged: the next window is the next ten, in one vendor call, as before', async () => {
    const [index] = usersWithUnread(0);
    const all = stack.upstreams.dataset.notificationsOf(index!).map((n) => n.id);
    const first = await window(index!, null);
    expect(first.ids).toEqual(all.slice(0, 10));
    const before = await listCalls();
    const second = await window(index!, first.endCursor);
    expect(second.ids).toEqual(all.slice(10, 20));
    expect((await listCalls()) - before).toBe(1);
    // Each edge's cursor goes on after its own notification.
    expect((await window(index!, first.cursors[4]!)).ids).toEqual(all.slice(5, 15));
  });

  it('unread ones read after their window (inbox zero): the next window is the next unread five, none skipped', async () => {
    const index = usersWithUnread(15)[1]!;
    const unread = stack.upstreams.dataset
      .notificationsOf(index)
      .filter((n) => !n.read)
      .map((n) => n.id);
    const first = await window(index, null, true, 5);
    expect(first.ids).toEqual(unread.slice(0, 5));
    const marked = await stack.gql<AnyData>(MARK_READ, { userId: stack.userId(index), ids: first.ids });
    expect(marked.body.data!.markNotificationsRead).toMatchObject({ status: 'COMPLETE', updated: 5 });
    const second = await window(index, first.endCursor, true, 5);
    // By offset alone this was unread[10..15): five never shown.
    expect(second.ids).toEqual(unread.slice(5, 10));
    // Some read on the next window too, the cursor's own among them: still the next unread.
    await stack.gql<AnyData>(MARK_READ, { userId: stack.userId(index), ids: [second.ids[1]!, second.ids[4]!] });
    const third = await window(index, second.endCursor, true, 5);
    expect(third.ids).toEqual(unread.slice(10, 15));
  });

  it('notifications arriving between windows: the next window goes on after the last one shown, none shown twice', async () => {
    const index = usersWithUnread(0)[2]!;
    const all = stack.upstreams.dataset.notificationsOf(index).map((n) => n.id);
    const first = await window(index, null);
    for (let i = 0; i < 3; i++) {
      const sent = await stack.gql<AnyData>(SEND, { input: { userId: stack.userId(index), title: `New ${i}`, body: 'Hello', channel: 'IN_APP' } });
      expect(sent.body.data!.sendNotification.status).toBe('COMPLETE');
    }
    const before = await listCalls();
    const second = await window(index, first.endCursor);
    // By offset alone this started with all[7..10) again.
    expect(second.ids).toEqual(all.slice(10, 20));
    // The window read from the cursor, and the one it moved to.
    expect((await listCalls()) - before).toBe(2);
    // Many more than a window: found in the window after.
    for (let i = 0; i < 15; i++) await stack.gql<AnyData>(SEND, { input: { userId: stack.userId(index), title: `More ${i}`, body: 'Hello', channel: 'PUSH' } });
    expect((await window(index, second.endCursor)).ids).toEqual(all.slice(20, 30));
  });

  it('a cursor made before cursors named their notification is read by its offset; a malformed one is refused', async () => {
    const index = usersWithUnread(0)[3]!;
    const all = stack.upstreams.dataset.notificationsOf(index).map((n) => n.id);
    expect((await window(index, notificationCursor({ offset: 10 }))).ids).toEqual(all.slice(10, 20));
    const bad = Buffer.from(JSON.stringify(['notifications', [10, '', 5]])).toString('base64url');
    const res = await stack.gql<AnyData>(WINDOW, { id: stack.userId(index), after: bad });
    expect(res.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('with the cache on (pages kept, our writes dropping them): inbox zero reads the next unread five, none skipped', async () => {
    const cached = await stacks({ cache: { enabled: true } });
    const index = usersWithUnread(15)[4]!;
    const unread = cached.upstreams.dataset
      .notificationsOf(index)
      .filter((n) => !n.read)
      .map((n) => n.id);
    const first = await windowOn(cached, index, null, true, 5);
    await cached.gql<AnyData>(MARK_READ, { userId: cached.userId(index), ids: first.ids });
    expect((await windowOn(cached, index, first.endCursor, true, 5)).ids).toEqual(unread.slice(5, 10));
  });

  it('a vendor that does not send X-Total-Count: cursors are offsets, and windows are read by them as before', async () => {
    const index = usersWithUnread(0)[5]!;
    const all = stack.upstreams.dataset.notificationsOf(index).map((n) => n.id);
    await stack.faults('notifications', { headers: { 'x-total-count': null } });
    const first = await window(index, null);
    expect(JSON.parse(Buffer.from(first.endCursor, 'base64url').toString())).toEqual(['notifications', 10]);
    expect((await window(index, first.endCursor)).ids).toEqual(all.slice(10, 20));
  });
});
