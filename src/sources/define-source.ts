import type { IResolvers } from '@graphql-tools/utils';
import type { z } from 'zod';
import type { SourceTuning } from '../config-types.js';
import type { StoredForm } from '../cache/entry.js';
import type { EntityPolicy } from '../cache/policy.js';
import type { Deadline } from '../resilience/deadline.js';
import type { HttpSource, HttpSourceOptions } from './http-source.js';
import type { ChangedPage } from './models.js';

/** What every source gets from the shared machinery: its pool, policy, deadline and logger. It adds its own auth. */
export type SourceBase = Omit<HttpSourceOptions, 'auth'>;

/** The URL and credentials a source is configured with; `credentials` maps each to its environment variable. */
export type Endpoint<Credentials extends Record<string, string>> = { url: string } & { [K in keyof Credentials]: string };

/** One kind of entity a source's reads are cached as. */
export interface CachedEntityDeclaration {
  /** `CACHE_<ENV>_TTL_MS`, `…_STALE_WHILE_REVALIDATE_MS`, `…_STALE_IF_ERROR_MS`. */
  env: string;
  /** For the configuration reference: "a user profile". */
  what: string;
  defaults: EntityPolicy;
}

/**
 * How an entity is read from its source: the batch fetch behind its cache
 * tiers and loaders, and how a key names its cache entry. Method syntax on
 * purpose: a definition's entities each have their own key and value types.
 */
export interface EntityReads<Source, K, V> extends CachedEntityDeclaration {
  /** What an invalidation drops together (a user's id: all of that user's entries). */
  group(key: K): string;
  /** Tells the entries of one group apart (a range, a page); '' when there is one. */
  variant(key: K): string;
  /**
   * One value or Error per key, in key order (see cache/cross-request-batcher.ts for the
   * contract); null: no such entity (remembered for CACHE_NEGATIVE_TTL_MS).
   */
  fetch(source: Source, keys: readonly K[], deadline: Deadline): Promise<ReadonlyArray<V | Error>>;
  /** No bulk endpoint: each key is its own call, failing alone, and not held for a cross-request batch. */
  perKey?: boolean;
  /** How a value is kept in L2 when its plain JSON is wasteful (see cache/entry.ts). */
  stored?: StoredForm<NonNullable<V>>;
}

/** Declares an entity with its key and value types inferred (`cachedEntity<string, UserEntity | null>()({...})`). */
export const cachedEntity =
  <K, V>() =>
  <Source>(reads: EntityReads<Source, K, V>): EntityReads<Source, K, V> =>
    reads;

/** What a source adds to the GraphQL schema: SDL (`extend type User { … }`) and its resolvers, merged at start. */
export interface SourceGraphQL {
  typeDefs: string;
  resolvers: IResolvers;
}

/**
 * Everything the server needs to know of one vendor, in its folder
 * (`src/sources/<name>/index.ts`): the environment variables that configure
 * it, the policy defaults that differ from the shared ones, the entities its
 * reads are cached as, and how to build its source from the shared base. The
 * registry (`registry.ts`) lists the definitions; source names, the config
 * schema's per-source keys, the cache entities and the sources themselves
 * are derived from it.
 */
export interface SourceDefinition<Name extends string, Credentials extends Record<string, string>, Source extends HttpSource> {
  name: Name;
  /** What the vendor is, for the configuration reference and logs. */
  description: string;
  env: { url: string; credentials: Credentials };
  /** Policy settings whose defaults differ from the shared ones (see SOURCE_SETTINGS in config.ts). */
  tuning?: Partial<SourceTuning>;
  /** Entity name (`<source>.<thing>`) → how it is read and cached; each becomes a cache, a loader and config keys. */
  entities?: Record<string, EntityReads<NoInfer<Source>, never, unknown>>;
  webhooks?: SourceWebhooks;
  /** A vendor without webhooks whose changes are pulled (or found by hashing what the cache refreshes). */
  changeFeed?: SourceChangeFeed<NoInfer<Source>>;
  /** Fields this source adds to the schema beyond schema/*.graphql (the built-in sources have theirs there, typed by codegen). */
  graphql?: SourceGraphQL;
  create(base: SourceBase, endpoint: Endpoint<Credentials>): Source;
}

/**
 * A vendor that pushes its changes (webhooks, `POST /webhooks/<name>`): the
 * variable holding its signing secret, and what an event changed — which
 * entities' groups to drop, on every instance. Duplicates and reordering are
 * harmless by construction: an invalidation repeated or late drops the same.
 */
export interface SourceWebhooks {
  /** `whsec_<base64>`, the Standard Webhooks secret; the receiver is off while it is unset. */
  secretEnv: string;
  /**
   * null: an event of a kind this server does not act on (accepted and ignored).
   * `published`: what subscribers hear of it (topic, the user it concerns, the payload as our entity);
   * `again`: a signal to read again, sent once more when the entries are dropped again (WEBHOOK_SETTLE_MS);
   * `once`: what the payload is (a notification's id): published once however many events carry it (a vendor
   * that re-signs its retries gives each a new webhook-id).
   */
  changes(event: unknown): { entities: string[]; groups: string[]; published?: { topic: string; key: string; payload: unknown; again?: boolean; once?: string }[] } | null;
  /**
   * What each event type is read as, by `type`: each event is walked for drift as a read's response is (unknown,
   * missing, retyped fields; counted, logged once per path, shown per source under the endpoint `webhook <type>`).
   */
  shapes?: Record<string, z.ZodType>;
}

/**
 * Changes pulled from a vendor that does not push them: every interval, the
 * records changed at or after a high-water mark (inclusive, oldest first).
 * Each changed record drops its group of `entity` and all of `alsoDrop`, on
 * every instance, and is published to `topic`, keyed by its id, with the
 * record as payload. Without `pull` (a vendor with no such filter), changes
 * are found by hashing the records the cache refreshes anyway.
 */
export interface SourceChangeFeed<Source> {
  /** The cached entity whose values are the records (its group is the record's id). */
  entity: string;
  /** Entities whose listed groups any change drops (lists that show the records). */
  alsoDrop: { entity: string; groups: string[] }[];
  topic: string;
  /** `<SOURCE>_CHANGE_FEED` (pull | hash | off) and `<SOURCE>_CHANGE_FEED_INTERVAL_MS`. */
  env: string;
  defaultIntervalMs: number;
  pull?(source: Source, since: string, page: number, deadline: Deadline): Promise<ChangedPage<unknown>>;
}

/** Any source's definition, for code that treats them alike. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- definitions differ in credentials and source class; each is typed where it is written
export type AnySourceDefinition = SourceDefinition<string, Record<string, string>, any>;

/** Registers a vendor: the identity function that gives a definition its inferred types. */
export function defineSource<Name extends string, Credentials extends Record<string, string>, Source extends HttpSource>(
  definition: SourceDefinition<Name, Credentials, Source>,
): SourceDefinition<Name, Credentials, Source> {
  return definition;
}
