import { EventEmitter } from 'cockatiel';
import type { z } from 'zod';
import type { SourceName } from '../errors.js';

/**
 * Schema drift: what a vendor sends that its contract as we read it does not
 * say. Validation ignores unknown fields and nulls mistyped optional ones, so
 * without this nobody would see a vendor rename `page_views` until a customer
 * did. A response is walked against the shape its zod schema expects and every
 * difference is reported with a normalised path (`users[].email`, `counts.*`:
 * array items and map keys collapse, so 10,000 ids make one path) and JSON
 * types, never values: they may hold personal data.
 */
export type DriftKind = 'unknown' | 'missing' | 'type_changed';
export type JsonType = 'string' | 'number' | 'boolean' | 'null' | 'object' | 'array';

export interface DriftFinding {
  kind: DriftKind;
  path: string;
  /** What arrived (for `missing`: "absent"). */
  seenType: JsonType | 'absent';
  /** What the schema reads there (for `unknown`: "none"). */
  expectedType: string;
}

export interface DriftEvent extends DriftFinding {
  source: SourceName;
  endpoint: string;
  /** True the first time this source saw this endpoint, kind and path. */
  first: boolean;
}

export interface DriftRecord extends DriftFinding {
  endpoint: string;
  /** Responses it was seen in. */
  count: number;
  firstSeenAt: string;
  lastSeenAt: string;
}

type Expected =
  | { kind: 'any' }
  | { kind: 'value'; types: ReadonlySet<JsonType>; name: string; check?: ValueCheck }
  | { kind: 'object'; fields: ReadonlyMap<string, Expected>; nullable: boolean }
  | { kind: 'array'; element: Expected; nullable: boolean }
  | { kind: 'map'; value: Expected; nullable: boolean };

const ANY: Expected = { kind: 'any' };

/** Schemas whose parsing is custom (a lenient array, a hand-checked series) say here what they read. */
const declaredShapes = new WeakMap<z.ZodType, z.ZodType>();

/**
 * Values of the right JSON type that still cannot mean what the schema reads:
 * a number in another unit, a string outside an enum. Only the value shows it.
 */
interface ValueCheck {
  type: JsonType;
  name: string;
  fits: (value: unknown) => boolean;
  /** The expected type a value that does not fit is reported with. */
  unfit: string;
}
const valueChecks = new WeakMap<z.ZodType, ValueCheck>();

/** `schema` reads numbers in the unit `name`, which `inUnit` tells apart: the walk reports a number outside it as changed. */
export function readsAsUnit<S extends z.ZodType>(schema: S, name: string, inUnit: (value: number) => boolean): S {
  valueChecks.set(schema, { type: 'number', name, fits: (v) => inUnit(v as number), unfit: `${name} (this number is another unit)` });
  return schema;
}

/** `schema` reads one of `values` (a vendor's enum): the walk reports a string outside them as changed (the vendor added one). */
export function readsAsOneOf<S extends z.ZodType>(schema: S, values: readonly string[]): S {
  const known = new Set(values);
  valueChecks.set(schema, { type: 'string', name: 'string', fits: (v) => known.has(v as string), unfit: `one of ${values.join(', ')}` });
  return schema;
}

/** `schema` reads what `shape` describes: the walk uses `shape` where it meets `schema`. */
export function readsAs<S extends z.ZodType>(schema: S, shape: z.ZodType): S {
  declaredShapes.set(schema, shape);
  return schema;
}

interface ZodDef {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  valueType?: z.ZodType;
  options?: z.ZodType[];
}

const derived = new WeakMap<z.ZodType, Expected>();

/** What a zod schema expects, derived once per schema. */
export function expectedShape(schema: z.ZodType): Expected {
  let shape = derived.get(schema);
  if (!shape) {
    shape = derive(schema, false);
    derived.set(schema, shape);
  }
  return shape;
}

function derive(schema: z.ZodType, nullable: boolean): Expected {
  const declared = declaredShapes.get(schema);
  if (declared) return derive(declared, nullable);
  const check = valueChecks.get(schema);
  if (check) return { kind: 'value', types: new Set<JsonType>(nullable ? [check.type, 'null'] : [check.type]), name: check.name, check };
  const def = (schema as unknown as { _zod: { def: ZodDef } })._zod.def;
  const value = (...types: JsonType[]): Expected => ({ kind: 'value', types: new Set(nullable ? [...types, 'null'] : types), name: types.join('|') });
  switch (def.type) {
    case 'nullable':
    case 'optional':
      return derive(def.innerType!, nullable || def.type === 'nullable');
    case 'default':
    case 'prefault':
    case 'catch':
    case 'readonly':
    case 'nonoptional':
      return derive(def.innerType!, nullable);
    case 'pipe':
      return derive(def.in!, nullable);
    case 'object':
      return { kind: 'object', nullable, fields: new Map(Object.entries(def.shape!).map(([k, v]) => [k, derive(v, false)])) };
    case 'array':
      return { kind: 'array', nullable, element: derive(def.element!, false) };
    case 'record':
      return { kind: 'map', nullable, value: derive(def.valueType!, false) };
    case 'string':
    case 'enum':
    case 'literal':
      return value('string');
    case 'number':
    case 'int':
      return value('number');
    case 'boolean':
      return value('boolean');
    case 'null':
      return value('null');
    case 'union': {
      const options = def.options!.map((o) => derive(o, false));
      if (options.every((o) => o.kind === 'value')) return value(...new Set(options.flatMap((o) => [...(o as { types: ReadonlySet<JsonType> }).types])));
      return ANY;
    }
    default:
      return ANY;
  }
}

export function jsonType(value: unknown): JsonType {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  const t = typeof value;
  return t === 'string' || t === 'number' || t === 'boolean' ? t : 'object';
}

function typeName(expected: Expected): string {
  switch (expected.kind) {
    case 'value':
      return expected.name;
    case 'map':
    case 'object':
      return 'object';
    case 'array':
      return 'array';
    default:
      return 'any';
  }
}

/**
 * Every difference between a JSON value and what the schema expects, once per
 * kind and path. `itemsPerArray` bounds the work: a sampled walk looks at the
 * first few items of each array and map, a full one (after a parse that had to
 * forgive something) at many more.
 */
export function findDrift(json: unknown, expected: Expected, itemsPerArray: number): DriftFinding[] {
  const walk: DriftWalk = { found: new Map(), itemsPerArray };
  walkDrift(walk, json, expected, '');
  return [...walk.found.values()];
}

/** One findDrift's state. Its steps are module functions, not closures made per call: see bench/RESULTS.md, session 36. */
interface DriftWalk {
  readonly found: Map<string, DriftFinding>;
  readonly itemsPerArray: number;
}

function note(walk: DriftWalk, finding: DriftFinding): void {
  const key = `${finding.kind} ${finding.path}`;
  if (!walk.found.has(key)) walk.found.set(key, finding);
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

function walkDrift(walk: DriftWalk, value: unknown, shape: Expected, path: string): void {
  if (shape.kind === 'any') return;
  const seen = jsonType(value);
  if (shape.kind === 'value') {
    if (!shape.types.has(seen)) note(walk, { kind: 'type_changed', path: path || '(root)', seenType: seen, expectedType: shape.name });
    else if (shape.check !== undefined && seen === shape.check.type && !shape.check.fits(value)) {
      note(walk, { kind: 'type_changed', path: path || '(root)', seenType: seen, expectedType: shape.check.unfit });
    }
    return;
  }
  if (seen === 'null' && shape.nullable) return;
  const wanted = shape.kind === 'array' ? 'array' : 'object';
  if (seen !== wanted) {
    note(walk, { kind: 'type_changed', path: path || '(root)', seenType: seen, expectedType: wanted });
    return;
  }
  if (shape.kind === 'array') {
    const items = value as unknown[];
    for (let i = 0; i < items.length && i < walk.itemsPerArray; i++) walkDrift(walk, items[i], shape.element, `${path}[]`);
    return;
  }
  const entries = value as Record<string, unknown>;
  if (shape.kind === 'map') {
    // Keys are ids: a value the map cannot hold is an entry nobody asked for (an extra key), not a changed id.
    const at = join(path, '*');
    let i = 0;
    for (const key in entries) {
      if (i++ >= walk.itemsPerArray) break;
      const item = entries[key];
      const itemType = jsonType(item);
      const fits = shape.value.kind === 'value' ? shape.value.types.has(itemType) : shape.value.kind === 'any' || itemType === (shape.value.kind === 'array' ? 'array' : 'object');
      if (!fits) note(walk, { kind: 'unknown', path: at, seenType: itemType, expectedType: typeName(shape.value) });
      else walkDrift(walk, item, shape.value, at);
    }
    return;
  }
  for (const key in entries) {
    const field = shape.fields.get(key);
    if (field === undefined) note(walk, { kind: 'unknown', path: join(path, key), seenType: jsonType(entries[key]), expectedType: 'none' });
    else walkDrift(walk, entries[key], field, join(path, key));
  }
  for (const [key, field] of shape.fields) {
    if (!(key in entries)) note(walk, { kind: 'missing', path: join(path, key), seenType: 'absent', expectedType: typeName(field) });
  }
}

/**
 * How much of a response is walked: every response along its first item of
 * each array and map (a few dozen checks: a drift that touches every item
 * shows at once), one a second per endpoint along more items, and every
 * response whose parse forgave something along all of them (bounded).
 */
const EVERY_ITEMS = 1;
const SAMPLE_ITEMS = 20;
const FULL_ITEMS = 1000;
const SAMPLE_EVERY_MS = 1000;
/** Distinct paths kept per source; past it, new ones are counted under "(more)" so labels stay bounded. */
const MAX_PATHS = 100;

/**
 * One source's drift: which responses to walk (sampled per endpoint, and every
 * one whose parse forgave something), what was found, and events for metrics
 * and logs. Kept per instance, since process start.
 */
export class DriftRecorder {
  private readonly records = new Map<string, DriftRecord>();
  private readonly lastWalk = new Map<string, number>();
  private readonly emitter = new EventEmitter<DriftEvent>();
  /** Every finding, once per response it was seen in. */
  readonly onDrift = this.emitter.addListener;

  constructor(private readonly source: SourceName) {}

  /** Walks `json` (`forgiven`: the parse nulled or dropped something) and records what differs. */
  inspect(endpoint: string, json: unknown, schema: z.ZodType, forgiven: boolean, now = Date.now()): void {
    let items = forgiven ? FULL_ITEMS : EVERY_ITEMS;
    // The sampling on the monotonic clock (a wall clock stepped back an hour would skip the fuller walks for that hour).
    const walkedAt = performance.now();
    if (!forgiven && walkedAt - (this.lastWalk.get(endpoint) ?? -Infinity) >= SAMPLE_EVERY_MS) {
      this.lastWalk.set(endpoint, walkedAt);
      items = SAMPLE_ITEMS;
    }
    for (const finding of findDrift(json, expectedShape(schema), items)) this.record(endpoint, finding, now);
  }

  /**
   * A response header the source reads that is absent or does not parse, as a
   * drift at the path `header <Name>`: seen, counted and logged once like a field's.
   */
  header(endpoint: string, name: string, seen: 'absent' | 'unreadable', expectedType: string, now = Date.now()): void {
    const path = `header ${name}`;
    this.record(endpoint, seen === 'absent' ? { kind: 'missing', path, seenType: 'absent', expectedType } : { kind: 'type_changed', path, seenType: 'string', expectedType }, now);
  }

  /**
   * A bulk answer that neither answered nor named as unknown some of the ids
   * asked, as a `missing` drift at `path`: the contract has an entry for each,
   * so the vendor may have changed how it spells them (keys encoded, say),
   * which would otherwise read as every user having no data.
   */
  omittedIds(endpoint: string, path: string, expectedType: string, now = Date.now()): void {
    this.record(endpoint, { kind: 'missing', path, seenType: 'absent', expectedType }, now);
  }

  /**
   * A free-form value (event properties) nested deeper than `maxDepth`, as a
   * `type_changed` drift at `path`: no response could carry it, so it was
   * left out.
   */
  tooDeep(endpoint: string, path: string, maxDepth: number, now = Date.now()): void {
    this.record(endpoint, { kind: 'type_changed', path, seenType: 'object', expectedType: `JSON nested at most ${maxDepth} levels` }, now);
  }

  private record(endpoint: string, finding: DriftFinding, now: number): void {
    let key = `${endpoint} ${finding.kind} ${finding.path}`;
    let record = this.records.get(key);
    if (!record && this.records.size >= MAX_PATHS) {
      finding = { ...finding, path: '(more)', seenType: 'absent', expectedType: 'any' };
      key = `${endpoint} ${finding.kind} (more)`;
      record = this.records.get(key);
    }
    const at = new Date(now).toISOString();
    const first = record === undefined;
    if (record) {
      record.count++;
      record.lastSeenAt = at;
      record.seenType = finding.seenType;
      record.expectedType = finding.expectedType;
    } else {
      this.records.set(key, { ...finding, endpoint, count: 1, firstSeenAt: at, lastSeenAt: at });
    }
    this.emitter.emit({ ...finding, source: this.source, endpoint, first });
  }

  /** What was seen, most recent first. */
  list(): DriftRecord[] {
    return [...this.records.values()].sort((a, b) => b.lastSeenAt.localeCompare(a.lastSeenAt)).map((r) => ({ ...r }));
  }
}
