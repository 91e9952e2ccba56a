import { Redis } from 'ioredis';

/**
 * Every command the Redis servers on `ports` run while watched (MONITOR: a script's own commands included), and which
 * of them need a Redis newer than a version, read from the server's own COMMAND DOCS (a command's `since`, and the
 * `since` of each option token it was given). Managed Redis still runs 6.x (Azure Cache's default, many ElastiCache
 * clusters), where a 7.0 option fails every time while our Redis 7 takes it.
 */
export async function watchCommands(ports: number[]): Promise<{ stop(): Promise<string[][]> }> {
  const seen: string[][] = [];
  const monitors = await Promise.all(ports.map((port) => new Redis(port, { lazyConnect: true }).monitor()));
  for (const monitor of monitors) monitor.on('monitor', (_time: string, args: string[]) => seen.push(args));
  return {
    async stop() {
      for (const monitor of monitors) monitor.disconnect();
      return seen;
    },
  };
}

interface ArgumentDoc {
  since?: string;
  token?: string;
  arguments?: ArgumentDoc[];
}

/** `PEXPIRE … GT (7.0.0)` for each distinct command, or option of one, that is newer than `version`. */
export async function newerThan(port: number, version: string, calls: string[][]): Promise<string[]> {
  const client = new Redis(port);
  try {
    const newer = new Set<string>();
    const docs = new Map<string, { since?: string; arguments?: ArgumentDoc[] } | null>();
    for (const [name, ...args] of calls) {
      const command = name!.toLowerCase();
      if (!docs.has(command)) docs.set(command, await docOf(client, command));
      const doc = docs.get(command);
      if (!doc) continue;
      if (doc.since && later(doc.since, version)) newer.add(`${command.toUpperCase()} (${doc.since})`);
      const given = new Set(args.map((a) => a.toUpperCase()));
      for (const [token, since] of tokensWithSince(doc.arguments ?? [], undefined)) {
        if (since && given.has(token) && later(since, version)) newer.add(`${command.toUpperCase()} … ${token} (${since})`);
      }
    }
    return [...newer].sort();
  } finally {
    client.disconnect();
  }
}

async function docOf(client: Redis, command: string): Promise<{ since?: string; arguments?: ArgumentDoc[] } | null> {
  const reply = (await client.call('COMMAND', 'DOCS', command)) as unknown[];
  if (!Array.isArray(reply) || reply.length < 2) return null;
  return asObject(reply[1]) as { since?: string; arguments?: ArgumentDoc[] };
}

/** RESP2's flat [name, value, …] lists as objects, all the way down. */
function asObject(value: unknown): unknown {
  if (!Array.isArray(value)) return value;
  if (value.length > 0 && value.every((v, i) => i % 2 === 1 || typeof v === 'string') && typeof value[0] === 'string' && !Array.isArray(value[0])) {
    const looksKeyed = value.length % 2 === 0 && (value as unknown[]).filter((_, i) => i % 2 === 0).every((k) => typeof k === 'string' && /^[a-z_]+$/.test(k));
    if (looksKeyed) return Object.fromEntries(Array.from({ length: value.length / 2 }, (_, i) => [value[2 * i] as string, asObject(value[2 * i + 1])]));
  }
  return value.map(asObject);
}

function* tokensWithSince(args: ArgumentDoc[], inherited: string | undefined): Generator<[string, string | undefined]> {
  for (const arg of args) {
    const since = arg.since ?? inherited;
    if (arg.token) yield [arg.token.toUpperCase(), since];
    if (arg.arguments) yield* tokensWithSince(arg.arguments, since);
  }
}

function later(a: string, b: string): boolean {
  const [x, y] = [a, b].map((v) => v.split('.').map(Number));
  for (let i = 0; i < 3; i++) if ((x![i] ?? 0) !== (y![i] ?? 0)) return (x![i] ?? 0) > (y![i] ?? 0);
  return false;
}
