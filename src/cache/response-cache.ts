import { Kind, type DocumentNode, type ExecutionResult, type OperationDefinitionNode } from 'graphql';
import { LRUCache } from 'lru-cache';
import type { Viewer } from '../viewer.js';
import type { CacheEntry } from './entry.js';
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

interface CachedResponse {
  /** Only the JSON is kept (the objects would take several times its size). */
  json: string;
  entries: CacheEntry<unknown>[];
}

/** What a kept response costs besides its JSON: the record, and a pointer per entry it stands on. */
const RESPONSE_OVERHEAD_BYTES = 200;
const BYTES_PER_DEPENDENCY = 8;
/** Distinct keys the doorkeeper remembers per generation (two generations: the last 32k–64k). */
const DOORKEEPER_GENERATION = 32_768;

/**
 * Which response keys were asked before, so that a response is kept on its
 * key's second request rather than its first (TinyLFU's doorkeeper). A query
 * that never repeats — 50 users picked at random — was otherwise kept, evicted
 * unread, and paid for in major GCs (see bench/RESULTS.md). Keys are held as
 * 32-bit hashes in two generations; a collision only keeps a response one
 * request early.
 */
export class Doorkeeper {
  private current = new Set<number>();
  private previous = new Set<number>();

  constructor(private readonly generation = DOORKEEPER_GENERATION) {}

  /** Whether the key was asked before; remembers it either way. */
  seen(key: string): boolean {
    const hash = fnv1a(key);
    if (this.current.has(hash)) return true;
    const before = this.previous.has(hash);
    if (this.current.size >= this.generation) {
      this.previous = this.current;
      this.current = new Set();
    }
    this.current.add(hash);
    return before;
  }
}

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

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
  private readonly documentIds = new WeakMap<DocumentNode, number>();
  private readonly eligible = new WeakMap<DocumentNode, Map<string | null, boolean>>();
  private nextDocumentId = 1;

  constructor(
    private readonly l1: MemoryTier,
    maxBytes: number,
    private readonly count?: (result: 'hit' | 'miss', n: number) => void,
  ) {
    this.responses = new LRUCache({ maxSize: maxBytes });
  }

  /** The response's key, or null when the operation is not one this cache answers. */
  key(document: DocumentNode, operationName: string | null | undefined, variables: unknown, viewer: Viewer): string | null {
    if (!this.isEligible(document, operationName ?? null)) return null;
    let id = this.documentIds.get(document);
    if (id === undefined) this.documentIds.set(document, (id = this.nextDocumentId++));
    return `${id}\u0000${operationName ?? ''}\u0000${viewer.userId}\u0000${viewer.admin ? 1 : 0}\u0000${variables === undefined ? '' : JSON.stringify(variables)}`;
  }

  /** The stored response when every entry it was built from is still in L1, unchanged and fresh. */
  get(key: string): ExecutionResult | undefined {
    const cached = this.responses.get(key);
    if (cached === undefined) {
      this.count?.('miss', 1);
      return undefined;
    }
    const now = Date.now();
    for (const entry of cached.entries) {
      if (now >= entry.freshUntil || !this.l1.holds(entry)) {
        this.responses.delete(key);
        this.count?.('miss', 1);
        return undefined;
      }
    }
    this.count?.('hit', 1);
    // yoga serializes a result with its `stringify` when it has one (graphql-jit's hook): the stored JSON, as is.
    // Nothing on the way reads `data`; should a plugin, it gets it parsed.
    const { json } = cached;
    return {
      get data() {
        return (JSON.parse(json) as ExecutionResult).data;
      },
      stringify: () => json,
    } as ExecutionResult;
  }

  /** Whether a response to this key, not found, should be kept once built: not on the key's first request. */
  admits(key: string): boolean {
    return this.doorkeeper.seen(key);
  }

  /** Keeps a response built only from fresh L1 entries, without errors; returns its JSON, or null when not kept. */
  set(key: string, result: ExecutionResult, deps: Dependencies): string | null {
    if (!deps.cacheable || deps.entries.length === 0 || result.errors?.length || result.extensions || !result.data) return null;
    const json = JSON.stringify({ data: result.data });
    const size = json.length + RESPONSE_OVERHEAD_BYTES + key.length + BYTES_PER_DEPENDENCY * deps.entries.length;
    if (size > this.responses.maxSize) return null;
    this.responses.set(key, { json, entries: deps.entries }, { size });
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
