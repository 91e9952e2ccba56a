import { readdirSync, readFileSync } from 'node:fs';

/** Variables each example operation opens with, for a user id that exists (the demo's first user). */
function variablesFor(name: string, userId: string): Record<string, unknown> | null {
  switch (name) {
    case 'Dashboard':
    case 'DeferredDashboard':
      return { id: userId };
    case 'UserList':
      return { first: 10 };
    case 'SendNotification':
      return { input: { userId, title: 'Hello from GraphiQL', body: 'Sent through the gateway.', channel: 'IN_APP' } };
    case 'UpdateProfile':
      return { input: { userId, nickname: 'from-graphiql' } };
    default:
      return null;
  }
}

/**
 * GraphiQL's tabs: the dashboard query first, then each operation in
 * examples/operations/ (the ones client teams generate their client from),
 * with variables that work against this server's data. Read when GraphiQL is
 * on; an install without examples/ gets the first tab only.
 */
export function graphiqlTabs(firstQuery: string, userId: string | undefined, headers: string | undefined): { query: string; variables?: string; headers?: string }[] {
  const tab = (query: string, variables: Record<string, unknown> | null) => ({
    query,
    ...(variables ? { variables: JSON.stringify(variables, null, 2) } : {}),
    ...(headers ? { headers } : {}),
  });
  const tabs = [tab(firstQuery, null)];
  const folder = new URL('../../../examples/operations/', import.meta.url);
  let files: string[];
  try {
    files = readdirSync(folder).filter((f) => f.endsWith('.graphql'));
  } catch {
    return tabs;
  }
  for (const file of files.sort()) {
    const name = file.replace(/\.graphql$/, '');
    tabs.push(tab(readFileSync(new URL(file, folder), 'utf8'), userId ? variablesFor(name, userId) : null));
  }
  return tabs;
}
