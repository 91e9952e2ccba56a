import type { z } from 'zod';

/**
 * Reading a vendor's JSON with a zod schema's meaning, without zod, for the
 * answer that reads cleanly — which is nearly every answer. Zod's parse makes a
 * result record, an issue list and a copy at every value it visits; on a cold
 * 50-user list that was a fifth of all the bytes the server allocated
 * (bench/RESULTS.md, session 30). A quick reader does the same checks and
 * builds only the output. It never forgives and never explains: a value it
 * cannot read, or a schema it does not know, is UNREAD, and the caller then
 * parses with zod itself, which reports or forgives as the schema says. So
 * what zod would accept and this refuses costs time, never a different
 * answer; the test (test/quick-read.test.ts) holds the two to the same output.
 *
 * Input is JSON as JSON.parse makes it: plain objects, arrays, strings,
 * finite numbers, booleans, null.
 */
export const UNREAD: unique symbol = Symbol('unread');
export type QuickReader = (raw: unknown) => unknown;

interface Check {
  check: string;
  minimum?: number;
  maximum?: number;
  value?: number;
  inclusive?: boolean;
  format?: string;
}

interface Def {
  type: string;
  checks?: { _zod: { def: Check } }[];
  innerType?: z.ZodType;
  in?: z.ZodType;
  out?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  entries?: Record<string, unknown>;
  defaultValue?: unknown;
  fn?: (value: unknown) => unknown;
  transform?: (value: unknown, ctx: TransformContext) => unknown;
  coerce?: boolean;
  catchall?: z.ZodType;
}

/** What a transform sees of zod's context: the one call it makes is addIssue, which here means "unread". */
interface TransformContext {
  value: unknown;
  issues: unknown[];
  addIssue: () => void;
}

const registered = new WeakMap<z.ZodType, QuickReader>();
const derived = new WeakMap<z.ZodType, QuickReader | null>();

/** `schema` reads quickly as `reader` does (for schemas whose parse is a transform of our own, see normalize.ts). */
export function setQuickReader(schema: z.ZodType, reader: QuickReader): void {
  registered.set(schema, reader);
}

/** The quick reader of `schema`, or undefined when it has a part this module does not know (zod reads it then). */
export function quickReaderOf(schema: z.ZodType): QuickReader | undefined {
  const own = registered.get(schema);
  if (own) return own;
  let reader = derived.get(schema);
  if (reader === undefined) {
    reader = derive(schema) ?? null;
    derived.set(schema, reader);
  }
  return reader ?? undefined;
}

/** What zod's own `schema.parse(raw)` would give, or UNREAD when the quick path cannot say. */
export function quickRead(schema: z.ZodType, raw: unknown): unknown {
  const reader = quickReaderOf(schema);
  return reader === undefined ? UNREAD : reader(raw);
}

/** A JSON object: not null, not an array (what zod's objects and records take). */
export const isJsonObject = (raw: unknown): raw is Record<string, unknown> => typeof raw === 'object' && raw !== null && !Array.isArray(raw);

function derive(schema: z.ZodType): QuickReader | undefined {
  const def = (schema as unknown as { _zod: { def: Def } })._zod.def;
  // Coercion, a catch-all (strict or loose objects) and checks other than a string's or a number's own are zod's.
  if (def.coerce === true || def.catchall !== undefined) return undefined;
  if (def.checks !== undefined && def.checks.length > 0 && def.type !== 'string' && def.type !== 'number') return undefined;
  switch (def.type) {
    case 'string': {
      const test = checksOf(def, 'string');
      return test && ((raw) => (typeof raw === 'string' && test(raw.length) ? raw : UNREAD));
    }
    case 'number': {
      const test = checksOf(def, 'number');
      return test && ((raw) => (typeof raw === 'number' && Number.isFinite(raw) && test(raw) ? raw : UNREAD));
    }
    case 'boolean':
      return (raw) => (typeof raw === 'boolean' ? raw : UNREAD);
    case 'unknown':
    case 'any':
      return (raw) => raw;
    case 'enum': {
      const values = new Set(Object.values(def.entries ?? {}));
      return (raw) => (values.has(raw) ? raw : UNREAD);
    }
    case 'optional':
    case 'nullable': {
      const inner = quickReaderOf(def.innerType!);
      const passes = def.type === 'optional' ? undefined : null;
      return inner && ((raw) => (raw === passes ? raw : inner(raw)));
    }
    case 'catch':
      // Stricter than zod: a value the inner schema refuses is unread here, and zod then gives the catch's value.
      return quickReaderOf(def.innerType!);
    case 'default': {
      const inner = quickReaderOf(def.innerType!);
      // zod's defaultValue is a getter that hands out a fresh copy each time.
      return inner && ((raw) => (raw === undefined ? def.defaultValue : inner(raw)));
    }
    case 'custom': {
      const fn = def.fn;
      return fn && ((raw) => (fn(raw) ? raw : UNREAD));
    }
    case 'pipe': {
      const first = quickReaderOf(def.in!);
      const then = quickReaderOf(def.out!);
      return (
        first &&
        then &&
        ((raw) => {
          const read = first(raw);
          return read === UNREAD ? UNREAD : then(read);
        })
      );
    }
    case 'transform':
      return def.transform && transformReader(def.transform);
    case 'array': {
      const element = quickReaderOf(def.element!);
      return element && ((raw) => (Array.isArray(raw) ? arrayOf(raw, element) : UNREAD));
    }
    case 'object':
      return objectReader(def.shape!);
    default:
      return undefined;
  }
}

/** A string's length or a number's checks as one predicate; undefined for a check this module does not know. */
function checksOf(def: Def, kind: 'string' | 'number'): ((n: number) => boolean) | undefined {
  const tests: ((n: number) => boolean)[] = [];
  for (const { _zod } of def.checks ?? []) {
    const check = _zod.def;
    if (kind === 'string' && check.check === 'min_length') tests.push((n) => n >= check.minimum!);
    else if (kind === 'string' && check.check === 'max_length') tests.push((n) => n <= check.maximum!);
    else if (kind === 'number' && check.check === 'number_format' && check.format === 'safeint') tests.push(Number.isSafeInteger);
    else if (kind === 'number' && check.check === 'greater_than') tests.push(check.inclusive ? (n) => n >= check.value! : (n) => n > check.value!);
    else if (kind === 'number' && check.check === 'less_than') tests.push(check.inclusive ? (n) => n <= check.value! : (n) => n < check.value!);
    else return undefined;
  }
  if (tests.length === 0) return () => true;
  if (tests.length === 1) return tests[0];
  return (n) => {
    // A loop, not tests.every: its callback, made per value, was 1.5 % of a cold list's bytes.
    for (let i = 0; i < tests.length; i++) if (!tests[i]!(n)) return false;
    return true;
  };
}

/**
 * A transform called as zod calls it. A transform refuses a value by adding
 * an issue; one shared context notes that, its flag saved and restored around
 * the call in case a transform reads another value quickly itself.
 */
let refused = false;
const context: TransformContext = {
  value: undefined,
  issues: [],
  addIssue: () => {
    refused = true;
  },
};
function transformReader(transform: (value: unknown, ctx: TransformContext) => unknown): QuickReader {
  return (raw) => {
    const outer = refused;
    refused = false;
    context.value = raw;
    const out = transform(raw, context);
    // A transform may also push onto ctx.issues itself, as zod allows.
    const no = refused || context.issues.length > 0 || out instanceof Promise;
    context.issues.length = 0;
    context.value = undefined;
    refused = outer;
    return no ? UNREAD : out;
  };
}

function arrayOf(raw: unknown[], element: QuickReader): unknown[] | typeof UNREAD {
  const out = new Array<unknown>(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const read = element(raw[i]);
    if (read === UNREAD) return UNREAD;
    out[i] = read;
  }
  return out;
}

/** zod's object: the shape's keys read, others left out; an absent key stays absent unless its schema gives a value (a default). */
function objectReader(shape: Record<string, z.ZodType>): QuickReader | undefined {
  const keys = Object.keys(shape);
  const readers: QuickReader[] = [];
  for (const key of keys) {
    const reader = quickReaderOf(shape[key]!);
    if (!reader) return undefined;
    readers.push(reader);
  }
  return (raw) => {
    if (!isJsonObject(raw)) return UNREAD;
    const out: Record<string, unknown> = {};
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const value = raw[key];
      const read = readers[i]!(value);
      if (read === UNREAD) return UNREAD;
      if (read !== undefined || key in raw) out[key] = read;
    }
    return out;
  };
}
