import type { EntityPolicy } from '../cache/policy.js';
import type { SourceName } from '../errors.js';
import { analytics } from './analytics/index.js';
import { audit } from './audit/index.js';
import type { CachedEntityDeclaration, Endpoint } from './define-source.js';
import { identity } from './identity/index.js';
import { notifications } from './notifications/index.js';

/**
 * Every vendor this server talks to, each defined in its own folder. Adding
 * one is adding its definition here (docs: adding a source); what is per
 * source elsewhere — names, config keys and defaults, cache entities, the
 * sources built at start, metrics labels, `Query.sources` — is derived.
 */
export const SOURCES = [identity, analytics, notifications, audit] as const;

type Definitions = (typeof SOURCES)[number];
type DefinitionOf<N extends SourceName> = Extract<Definitions, { name: N }>;

/** `errors.ts` names the sources for the bottom of the graph; this fails to compile when the two lists differ. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
export const NAMES_AGREE: Same<Definitions['name'], SourceName> = true;

export const SOURCE_NAMES = SOURCES.map((s) => s.name) as readonly SourceName[];

/** Per source, the URL and credentials it is configured with. */
export type UpstreamEndpoints = { [N in SourceName]: Endpoint<DefinitionOf<N>['env']['credentials']> };

/** Per source, the source built from its definition. */
export type SourceInstances = { [N in SourceName]: ReturnType<DefinitionOf<N>['create']> };

/** Every cached entity, with the source that owns it. */
const declared = (s: Definitions): Record<string, CachedEntityDeclaration> => s.entities ?? {};
export const ENTITY_SETTINGS: Record<string, CachedEntityDeclaration & { source: SourceName }> = Object.fromEntries(
  SOURCES.flatMap((s) => Object.entries(declared(s)).map(([entity, d]) => [entity, { ...d, source: s.name }])),
);
export const CACHED_ENTITIES: readonly string[] = Object.keys(ENTITY_SETTINGS);

/** A declared entity's settings; an undeclared name is a bug in the code that asks. */
export function entitySettings(entity: string): CachedEntityDeclaration & { source: SourceName } {
  const settings = ENTITY_SETTINGS[entity];
  if (!settings) throw new Error(`no source declares the cached entity "${entity}" (see sources/registry.ts)`);
  return settings;
}

/** The cache windows of every entity, as declared by its source. */
export function defaultEntityPolicies(): Record<string, EntityPolicy> {
  return Object.fromEntries(Object.entries(ENTITY_SETTINGS).map(([entity, s]) => [entity, { ...s.defaults }]));
}
