/**
 * A typed client made from the schema: `npm run codegen` turns the operations
 * in examples/operations/ into typed documents (examples/generated/), and
 * urql's core client sends them. Results and variables are checked by the
 * compiler; in production, with PERSISTED_OPERATIONS_REQUIRED=true, only these
 * operations' hashes are accepted.
 *
 *   npx tsx examples/client.ts <graphql-url> <token> <user-id>
 *
 * It shows the three things a client of this server handles: the dashboard
 * (partial data: a failed vendor's fields are null, errors[] says which and
 * why), and the deferred dashboard, whose slow vendor's fields come in a
 * later part of the same response (@defer, multipart/mixed).
 */
import { Client, fetchExchange, type CombinedError } from '@urql/core';
import { DashboardDocument, DeferredDashboardDocument } from './generated/graphql.js';

const [url, token, id] = process.argv.slice(2);
if (!url || !token || !id) {
  console.error('usage: npx tsx examples/client.ts <graphql-url> <token> <user-id>');
  process.exit(2);
}

const client = new Client({
  url,
  exchanges: [fetchExchange],
  requestPolicy: 'network-only',
  fetchOptions: { headers: { authorization: `Bearer ${token}` } },
});

/** Partial data is normal: each failed vendor's fields are null, and its typed error says which and why. */
function reportPartial(error: CombinedError | undefined): void {
  if (error?.networkError) throw error.networkError;
  for (const e of error?.graphQLErrors ?? []) console.warn(`partial: ${String(e.extensions.code)} at ${e.path?.join('.')}: ${e.message}`);
}

const dashboard = await client.query(DashboardDocument, { id }).toPromise();
reportPartial(dashboard.error);
// Typed: data.user?.metrics?.pageViews is number | undefined, a typo is a compile error.
console.log(`dashboard: ${dashboard.data?.user?.name} · ${dashboard.data?.user?.metrics?.pageViews} page views · ${dashboard.data?.user?.unreadNotificationCount} unread`);

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
    const user = result.data?.user;
    const metrics = user && 'metrics' in user ? user.metrics : undefined;
    const shown = metrics === undefined ? 'metrics to follow' : metrics === null ? 'metrics unavailable' : `${metrics.pageViews} page views`;
    console.log(`deferred dashboard part after ${Date.now() - startedAt} ms: ${user?.name} · ${user?.unreadNotificationCount} unread · ${shown}`);
    if (!result.hasNext) {
      queueMicrotask(() => unsubscribe());
      resolve();
    }
  });
});
