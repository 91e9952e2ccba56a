/**
 * A typed client made from the schema: `npm run codegen` turns the operations
 * in examples/operations/ into typed documents (examples/generated/). Results
 * and variables are checked by the compiler; in production, with
 * PERSISTED_OPERATIONS_REQUIRED=true, only these operations' hashes are sent.
 *
 *   npx tsx examples/client.ts <graphql-url> <token> <user-id>
 */
import { print } from 'graphql';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { DashboardDocument } from './generated/graphql.js';

async function request<R, V>(url: string, token: string, document: TypedDocumentNode<R, V>, variables: V, persistedOnly = false): Promise<R> {
  const hash = (document as { __meta__?: { hash?: string } }).__meta__?.hash?.replace(/^sha256:/, '');
  const body = persistedOnly && hash ? { variables, extensions: { persistedQuery: { version: 1, sha256Hash: hash } } } : { query: print(document), variables };
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
  const json = (await res.json()) as { data?: R; errors?: { message: string; extensions?: { code?: string } }[]; extensions?: { stale?: unknown } };
  if (!json.data) throw new Error(json.errors?.map((e) => `${e.extensions?.code}: ${e.message}`).join('; ') ?? `HTTP ${res.status}`);
  // Partial data is normal: a failed source leaves its fields null and says why in errors[].
  for (const e of json.errors ?? []) console.warn(`partial: ${e.extensions?.code} ${e.message}`);
  return json.data;
}

const [url, token, id] = process.argv.slice(2);
if (!url || !token || !id) {
  console.error('usage: npx tsx examples/client.ts <graphql-url> <token> <user-id>');
  process.exit(2);
}
const data = await request(url, token, DashboardDocument, { id });
// Typed: data.user?.metrics?.pageViews is number | undefined, a typo is a compile error.
console.log(data.user?.name, data.user?.metrics?.pageViews, data.user?.unreadNotificationCount);
