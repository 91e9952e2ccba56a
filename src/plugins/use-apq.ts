import { createHash } from 'node:crypto';
import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { lruOfEntries } from '../cache/lru-of-entries.js';

interface PersistedQueryExtension {
  version?: unknown;
  sha256Hash?: unknown;
}

/**
 * Automatic persisted queries, the protocol Apollo and Relay mobile clients
 * speak: a request may send only `extensions.persistedQuery.sha256Hash`; if
 * the server knows the hash it runs that document, else it answers
 * PERSISTED_QUERY_NOT_FOUND and the client sends the document with its hash
 * once, which is checked and remembered. (@graphql-yoga/plugin-apq's peer
 * range excludes the @graphql-tools/utils that yoga 5.24 itself brings, so
 * this small plugin stands in for it.)
 */
export interface AutomaticPersistedQueriesOptions {
  /** Documents remembered by hash (least recently used dropped past it). @default 10000 */
  max?: number;
}

export function useAutomaticPersistedQueries(options: AutomaticPersistedQueriesOptions = {}): Plugin {
  const store = lruOfEntries<string, string>(options.max ?? 10_000);
  return {
    onParams({ params, setParams }) {
      const persisted = (params.extensions as { persistedQuery?: PersistedQueryExtension } | undefined)?.persistedQuery;
      if (persisted === undefined) return;
      if (persisted.version !== 1 || typeof persisted.sha256Hash !== 'string' || !/^[a-f0-9]{64}$/i.test(persisted.sha256Hash)) {
        throw new GraphQLError('Unsupported persisted query: send version 1 with a sha256Hash.', { extensions: { code: 'PERSISTED_QUERY_NOT_SUPPORTED', http: { status: 400 } } });
      }
      const hash = persisted.sha256Hash.toLowerCase();
      if (typeof params.query === 'string') {
        if (createHash('sha256').update(params.query).digest('hex') !== hash) {
          throw new GraphQLError('provided sha does not match query', { extensions: { code: 'BAD_USER_INPUT', http: { status: 400 } } });
        }
        store.set(hash, params.query);
        return;
      }
      const query = store.get(hash);
      if (query === undefined) throw new GraphQLError('PersistedQueryNotFound', { extensions: { code: 'PERSISTED_QUERY_NOT_FOUND' } });
      setParams({ ...params, query });
    },
  };
}
