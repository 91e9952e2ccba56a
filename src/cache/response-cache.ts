import { hash } from 'node:crypto';
import { Kind, type DocumentNode, type ExecutionResult, type OperationDefinitionNode } from 'graphql';
import { LRUCache } from 'lru-cache';
import type { Viewer } from '../viewer.js';
import { storedAhead, type CacheEntry } from './entry.js';
import { Doorkeeper } from './doorkeeper.js';
import type { MemoryTier } from './memory-tier.js';

/**
 * Root fields whose whole subtree is built from cached entities (users and
 * what hangs off them: metrics, unread counts, notification and event pages),
 * with nothing else read. A new field under them that reads a source directly
 * must not be answered from here: test/response-cache.test.ts checks the
 * resolvers against this list.
 */
export const ENTITY_ROOT_FIELDS: ReadonlySet<string> = new Set(['user', 'users', 'viewer']);

/**
 * The L1 entries one request's execution read. A response built only from
 * fresh L1 hits can be given again as long as every one of them is still in
 * L1 and still fresh: an invalidation (a write, here or on another instance),
 * a refresh or an eviction retires an entry, and with it every response built
 * from it.
 */
export class Dependencies {
  readonly entries: CacheEntry<unknown>[] = [];
  /** False once anything came another way (a miss, a stale entry, L2). */
  cacheable = true;

  add(entry: CacheEntry<unknown>): void {
    this.entries.push(entry);
  }
}

/** A kept response: what the HTTP layer writes on a hit without yoga (src/http/cached-responses.ts). */
export interface CachedResponse {
  /** Only the JSON's bytes are kept (the objects would take several times their size); each compressed form once a client asked for it. */
  bytes: Buffer;
  encoded: Partial<Record<'br' | 'gzip', Buffer>>;
  /** The operation's metrics label. */
  operation: string;
  entries: CacheEntry<unknown>[];
}

/** What a request asks, as the cache keys it: the same from a parsed body (HTTP layer) and from yoga's params. */
export interface ResponseKeyParts {
  /** The document's text, when sent. */
  query?: unknown;
  operationName?: unknown;
  variables?: unknown;
  extensions?: unknown;
}

/**
 * The hashes of the documents seen lately: clients send a handful of documents
 * again and again, and a SHA-256 of one costs several times the map lookup
 * (bench/instructions.ts: ~7,600 instructions a dashboard, 4 % of a hit).
 * Bounded by the documents' length (a client may send a new, large one with
 * every request): 1 MiB in all, none over 64 KiB kept.
 */
const documentHashes = new LRUCache<string, string>({
  maxSize: 1024 * 1024,
  maxEntrySize: 64 * 1024,
  sizeCalculation: (hex, query) => query.length + hex.length,
});

/**
 * The document's identity: the SHA-256 (hex) of its text, or, when only a
 * persisted hash was sent, that hash (APQ's and codegen's are SHA-256 of the
 * text too, so both ways of sending a document share its responses).
 */
export function documentHash(parts: ResponseKeyParts): string | null {
  if (typeof parts.query === 'string') {
    let hex = documentHashes.get(parts.query);
    if (hex === undefined) documentHashes.set(parts.query, (hex = hash('sha256', parts.query, 'hex')));
    return hex;
  }
  const persisted = (parts.extensions as { persistedQuery?: { sha256Hash?: unknown } } | null | undefined)?.persistedQuery?.sha256Hash;
  return typeof persisted === 'string' ? persisted.replace(/^sha256:/, '').toLowerCase() : null;
}

/** What a kept response costs besides its JSON: the record, and a pointer per entry it stands on. */
const RESPONSE_OVERHEAD_BYTES = 200;
const BYTES_PER_DEPENDENCY = 8;
/**
 * Whole responses of entity queries, per viewer, document, operation and
 * variables, valid exactly as long as the L1 entries they were built from
 * (see Dependencies). A repeated dashboard skips execution and serialization:
 * the resolvers would produce the same JSON from the same entries for the same
 * viewer. Kept from a key's second request on (see Doorkeeper). Bounded by
 * bytes (the JSON and what it stands on); in-process only.
 */
export class ResponseCache {
  private readonly responses: LRUCache<string, CachedResponse>;
  private readonly doorkeeper = new Doorkeeper();
  private readonly eligible = new WeakMap<DocumentNode, Map<string | null, boolean>>();

  constructor(
    private readonly l1: MemoryTier,
    maxBytes: number,
    private readonly count?: (result: 'hit' | 'miss', n: number) => void,
  ) {
    this.responses = new LRUCache({ maxSize: maxBytes });
  }

  /**
   * The response's key: document hash, operation name, the caller (`sub` and
   * scope) and variables; null when the request names no document.
   */
  key(parts: ResponseKeyParts, viewer: Viewer): string | null {
    const document = documentHash(parts);
    if (document === null) return null;
    const operationName = typeof parts.operationName === 'string' ? parts.operationName : '';
    const variables = parts.variables === undefined || parts.variables === null ? '' : JSON.stringify(parts.variables);
    return `${document}\u0000${operationName}\u0000${viewer.userId}\u0000${viewer.admin ? 1 : 0}\u0000${variables}`;
  }

  /** Whether the operation is one this cache answers (a query of entity root fields only). */
  answers(document: DocumentNode, operationName: string | null | undefined): boolean {
    return this.isEligible(document, operationName ?? null);
  }

  /**
   * The HTTP layer's look: the kept response when it still stands, counted
   * only when it is a hit (the request may be no query this cache answers;
   * yoga's look counts the miss when it is).
   */
  lookup(key: string): CachedResponse | undefined {
    const cached = this.standing(key);
    if (cached !== undefined) this.count?.('hit', 1);
    return cached;
  }

  /** The kept response when every entry it was built from is still in L1, unchanged and fresh (counted as a hit or miss). */
  get(key: string): ExecutionResult | undefined {
    const cached = this.standing(key);
    this.count?.(cached === undefined ? 'miss' : 'hit', 1);
    if (cached === undefined) return undefined;
    // yoga serializes a result with its `stringify` when it has one (graphql-jit's hook): the stored JSON, as is.
    // Nothing on the way reads `data`; should a plugin, it gets it parsed.
    const json = cached.bytes.toString();
    return {
      get data() {
        return (JSON.parse(json) as ExecutionResult).data;
      },
      stringify: () => json,
    } as ExecutionResult;
  }

  private standing(key: string): CachedResponse | undefined {
    const cached = this.responses.get(key);
    if (cached === undefined) return undefined;
    const now = Date.now();
    for (const entry of cached.entries) {
      if (now >= entry.freshUntil || storedAhead(entry, now) || !this.l1.holds(entry)) {
        this.responses.delete(key);
        return undefined;
      }
    }
    return cached;
  }

  /** Whether a response to this key, not found, should be kept once built: not on the key's first request. */
  admits(key: string): boolean {
    return this.doorkeeper.seen(key);
  }

  /** Keeps a response built only from fresh L1 entries, without errors; returns its JSON, or null when not kept. */
  set(key: string, result: ExecutionResult, deps: Dependencies, operation: string): string | null {
    if (!deps.cacheable || deps.entries.length === 0 || result.errors?.length || result.extensions || !result.data) return null;
    const json = JSON.stringify({ data: result.data });
    const bytes = Buffer.from(json);
    // Compressed forms, added on use, are a fraction of it.
    const size = bytes.length + RESPONSE_OVERHEAD_BYTES + key.length + BYTES_PER_DEPENDENCY * deps.entries.length;
    if (size > this.responses.maxSize) return null;
    this.responses.set(key, { bytes, encoded: {}, operation, entries: deps.entries }, { size });
    return json;
  }

  private isEligible(document: DocumentNode, operationName: string | null): boolean {
    let byOperation = this.eligible.get(document);
    if (!byOperation) this.eligible.set(document, (byOperation = new Map()));
    let eligible = byOperation.get(operationName);
    if (eligible === undefined) byOperation.set(operationName, (eligible = readsOnlyEntities(document, operationName)));
    return eligible;
  }
}

/** A query whose root selections are all plain entity root fields (no fragments, no directives at the root). */
function readsOnlyEntities(document: DocumentNode, operationName: string | null): boolean {
  const operations = document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  const operation = operationName === null ? (operations.length === 1 ? operations[0] : undefined) : operations.find((o) => o.name?.value === operationName);
  if (!operation || operation.operation !== 'query' || operation.directives?.length) return false;
  return operation.selectionSet.selections.every((s) => s.kind === Kind.FIELD && !s.directives?.length && (ENTITY_ROOT_FIELDS.has(s.name.value) || s.name.value === '__typename'));
}
