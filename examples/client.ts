/**
 * A typed client made from the schema: `npm run codegen` turns the operations
 * in examples/operations/ into typed documents (examples/generated/), and
 * urql's core client sends them. Results, variables and error codes are
 * checked by the compiler; in production, with PERSISTED_OPERATIONS_REQUIRED=true,
 * only these operations' hashes are accepted.
 *
 *   GRAPHQL_URL=http://127.0.0.1:4000/graphql GRAPHQL_TOKEN=<token> npm run example
 *   GRAPHQL_USER_ID=<id>   another user than the token's own (an admin token may read anyone)
 *   SEND_NOTIFICATION=false    skip the mutation
 *
 * It shows what a client of this server handles:
 * - the dashboard, partial data included: a failed vendor's fields are null,
 *   and `errors[]` says which vendor, with a typed code, and whether to retry;
 * - the deferred dashboard, whose slow vendor's fields come in a later part
 *   of the same response (@defer, multipart/mixed);
 * - a mutation, with its delivery status per target.
 * It exits 1 when the user does not exist or the server cannot be reached.
 */
import { Client, fetchExchange, type CombinedError } from '@urql/core';
import type { ErrorCode } from './generated/enums.js';
import { DashboardDocument, DeferredDashboardDocument, SendNotificationDocument, ViewerDocument } from './generated/graphql.js';

const url = process.env.GRAPHQL_URL ?? process.argv[2];
const token = process.env.GRAPHQL_TOKEN ?? process.argv[3];
if (!url || !token) {
  console.error('usage: GRAPHQL_URL=<url> GRAPHQL_TOKEN=<token> npm run example   (or: npx tsx examples/client.ts <url> <token> [<user-id>])');
  process.exit(2);
}

const client = new Client({
  url,
  exchanges: [fetchExchange],
  requestPolicy: 'network-only',
  fetchOptions: { headers: { authorization: `Bearer ${token}` } },
});

/** What a screen says about one failed part: typed on the schema's ErrorCode, so a new code is a compile error here. */
function explain(code: ErrorCode, source: string | undefined, retryAfter: number | undefined): string {
  switch (code) {
    case 'SOURCE_TIMEOUT':
    case 'SOURCE_UNAVAILABLE':
    case 'SOURCE_CIRCUIT_OPEN':
      return `${source} is not answering; showing everything else (try again shortly)`;
    case 'SOURCE_RATE_LIMITED':
    case 'RATE_LIMITED':
    case 'OVERLOADED':
      return `${source ?? 'the server'} is busy; try again in ${retryAfter ?? 1} s`;
    case 'SOURCE_BAD_RESPONSE':
    case 'SOURCE_AUTH_FAILED':
      return `${source} answered something unusable; it is not retryable from here`;
    case 'STORE_UNAVAILABLE':
      return "the server's own store is not answering; try again shortly";
    case 'UNAUTHENTICATED':
      return 'the token is missing, invalid or expired';
    case 'FORBIDDEN':
      return 'this token may not read that';
    case 'BAD_USER_INPUT':
    case 'BAD_REQUEST':
    case 'GRAPHQL_VALIDATION_FAILED':
    case 'PERSISTED_QUERY_NOT_FOUND':
    case 'PERSISTED_QUERY_ONLY':
    case 'IDEMPOTENCY_KEY_IN_USE':
    case 'INTERNAL_SERVER_ERROR':
      return 'the request needs fixing (see the message)';
  }
}

/** Partial data is normal: each failed vendor's fields are null, and its typed error says which and why. A network failure is not. */
function reportPartial(error: CombinedError | undefined): number {
  if (error?.networkError) throw error.networkError;
  for (const e of error?.graphQLErrors ?? []) {
    const { code, source, retryAfterSeconds } = e.extensions as { code: ErrorCode; source?: string; retryAfterSeconds?: number };
    console.log(`partial: ${e.path?.join('.')} is null: ${code}: ${explain(code, source, retryAfterSeconds)}`);
  }
  return error?.graphQLErrors.length ?? 0;
}

try {
  let id = process.env.GRAPHQL_USER_ID ?? process.argv[4];
  if (!id) {
    const viewer = await client.query(ViewerDocument, {}).toPromise();
    reportPartial(viewer.error);
    id = viewer.data?.viewer?.id;
    if (!id) throw new Error('the token has no user this server knows: set GRAPHQL_USER_ID');
  }

  const dashboard = await client.query(DashboardDocument, { id }).toPromise();
  const failed = reportPartial(dashboard.error);
  const user = dashboard.data?.user;
  if (!user) {
    console.error(`No user ${id}. A real id: the one \`npm start\` or \`npm run upstreams\` prints, or { userList(first: 5) { edges { node { id } } } }.`);
    process.exit(1);
  }
  // Typed: user.metrics?.pageViews is number | undefined; a typo is a compile error.
  const views = user.metrics ? `${user.metrics.pageViews} page views` : 'metrics unavailable';
  console.log(`dashboard: ${user.name} · ${views} · ${user.unreadNotificationCount ?? '?'} unread${failed ? ` (${failed} part(s) missing)` : ''}`);

  // @defer: urql reads each part of the multipart response as it arrives and merges it into the result.
  const startedAt = Date.now();
  await new Promise<void>((resolve, reject) => {
    const { unsubscribe } = client.query(DeferredDashboardDocument, { id }).subscribe((result) => {
      try {
        reportPartial(result.error);
      } catch (e) {
        reject(e as Error);
        return;
      }
      const u = result.data?.user;
      const metrics = u && 'metrics' in u ? u.metrics : undefined;
      const shown = metrics === undefined ? 'metrics to follow' : metrics === null ? 'metrics unavailable' : `${metrics.pageViews} page views`;
      console.log(`deferred dashboard part after ${Date.now() - startedAt} ms: ${u?.name} · ${u?.unreadNotificationCount} unread · ${shown}`);
      if (!result.hasNext) {
        queueMicrotask(() => unsubscribe());
        resolve();
      }
    });
  });

  if (process.env.SEND_NOTIFICATION !== 'false') {
    const sent = await client
      .mutation(SendNotificationDocument, { input: { userId: id, title: 'Hello from the example client', body: 'Sent through the gateway.', channel: 'IN_APP' } })
      .toPromise();
    reportPartial(sent.error);
    const payload = sent.data?.sendNotification;
    console.log(`sendNotification: ${payload?.status} · ${payload?.deliveries.map((d) => `${d.target} ${d.state}`).join(', ')}`);
  }
} catch (error) {
  console.error(`example failed: ${(error as Error).message}`);
  process.exit(1);
}
