import type { SourceTuning } from '../config-types.js';
import type { EntityPolicy } from '../cache/policy.js';
import type { HttpSource, HttpSourceOptions } from './http-source.js';

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
  /** Entity name (`<source>.<thing>`) → its cache declaration. */
  entities?: Record<string, CachedEntityDeclaration>;
  create(base: SourceBase, endpoint: Endpoint<Credentials>): Source;
}

/** Registers a vendor: the identity function that gives a definition its inferred types. */
export function defineSource<Name extends string, Credentials extends Record<string, string>, Source extends HttpSource>(
  definition: SourceDefinition<Name, Credentials, Source>,
): SourceDefinition<Name, Credentials, Source> {
  return definition;
}
