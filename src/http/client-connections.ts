import { readFileSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../logger.js';
import { LineEvery } from '../line-every.js';

/** The default cap when the open-file limit is unknown or high: about 44 MB of idle connections (4.4 KB each, measured). */
export const DEFAULT_MAX_CLIENT_CONNECTIONS = 10_000;
/** Descriptors the process needs besides client and vendor connections: Redis (a handful, more in a cluster), logs, files. */
export const OWN_DESCRIPTORS = 128;

/**
 * The process's open-file limit (the soft one, which Node raised to the hard one at start); null where it cannot be
 * read (not Linux).
 */
export function openFileLimit(limitsFile = '/proc/self/limits'): number | null {
  try {
    const line = readFileSync(limitsFile, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    if (soft === 'unlimited') return null;
    const n = Number(soft);
    return Number.isSafeInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

/**
 * How many client connections one process keeps at most: what the open-file limit leaves once the vendor pools
 * (`vendorConnections`, their sum) and our own descriptors are counted, at most DEFAULT_MAX_CLIENT_CONNECTIONS, and
 * never under half the limit.
 */
export function defaultMaxClientConnections(openFiles: number | null, vendorConnections: number): number {
  if (openFiles === null) return DEFAULT_MAX_CLIENT_CONNECTIONS;
  return Math.min(DEFAULT_MAX_CLIENT_CONNECTIONS, Math.max(Math.floor(openFiles / 2), openFiles - vendorConnections - OWN_DESCRIPTORS));
}

/** What was done at the cap: idle connections closed to take a new one, or the new one refused (none was idle). */
export interface AtCap {
  closedIdle: number;
  refused: number;
  open: number;
}

const LAST_USE = Symbol('lastUse');
const TAKEN = Symbol('taken');
interface TrackedSocket extends Socket {
  [LAST_USE]?: number;
  /** Upgraded to a WebSocket: no longer HTTP's to close. */
  [TAKEN]?: true;
  /**
   * Node's own: the response in progress on this connection, null once it is sent (and undefined before the first).
   * Read rather than a reference of ours, which would keep each idle connection's last request (its body among it)
   * in memory until the next one.
   */
  _httpMessage?: ServerResponse | null;
}

/**
 * The client connections of one server, at most `max` of them. Each holds a file descriptor, which vendor calls and
 * Redis need too: a thousand idle keep-alive connections (a client fleet that never closes its own, or someone
 * holding them on purpose) left none, and vendor calls failed with EMFILE while new clients waited unanswered. As
 * nginx does with its keep-alive connections, a connection past the cap makes room by closing the ones idle the
 * longest (no request in progress, not a stream, not a WebSocket); only when none is idle is the new one refused.
 */
export class ClientConnections {
  private readonly open = new Set<TrackedSocket>();
  private uses = 0;
  /** Since start: idle connections closed to take new ones, and new ones refused. */
  closedIdle = 0;
  refused = 0;
  /** Room made at once past the cap (1 % of it), so the next connections do not look for idle ones again. */
  private readonly slack: number;

  constructor(
    readonly max: number,
    private readonly onAtCap: (atCap: AtCap) => void,
  ) {
    this.slack = Math.max(1, Math.floor(max / 100));
  }

  get count(): number {
    return this.open.size;
  }

  watch(server: Server): void {
    server.on('connection', (socket: TrackedSocket) => this.connected(socket));
    server.prependListener('upgrade', (_req: IncomingMessage, socket: TrackedSocket) => {
      socket[TAKEN] = true;
    });
  }

  /** A request begins on its connection: the connection's last use, for "idle the longest". */
  requestStarted(req: IncomingMessage): void {
    (req.socket as TrackedSocket)[LAST_USE] = ++this.uses;
  }

  private connected(socket: TrackedSocket): void {
    socket[LAST_USE] = ++this.uses;
    this.open.add(socket);
    socket.once('close', () => this.open.delete(socket));
    if (this.open.size > this.max) this.makeRoom(socket);
  }

  private makeRoom(newcomer: TrackedSocket): void {
    const idle: TrackedSocket[] = [];
    for (const socket of this.open) if (socket !== newcomer && isIdle(socket)) idle.push(socket);
    idle.sort((a, b) => a[LAST_USE]! - b[LAST_USE]!);
    const closing = idle.slice(0, this.open.size - this.max + this.slack);
    for (const socket of closing) {
      this.open.delete(socket);
      socket.destroy();
    }
    let refused = 0;
    if (this.open.size > this.max) {
      this.open.delete(newcomer);
      newcomer.destroy();
      refused = 1;
    }
    this.closedIdle += closing.length;
    this.refused += refused;
    this.onAtCap({ closedIdle: closing.length, refused, open: this.open.size });
  }
}

function isIdle(socket: TrackedSocket): boolean {
  if (socket[TAKEN]) return false;
  const res = socket._httpMessage;
  return res === undefined || res === null || res.writableFinished;
}

/**
 * The server's client connections under MAX_CLIENT_CONNECTIONS (null: the default for this process's open-file
 * limit). A cap set over what the limit leaves is said at start; what is done at the cap, at most every 10 s.
 */
export function capClientConnections(configured: number | null, vendorConnections: number, logger: Logger, openFiles = openFileLimit()): ClientConnections {
  const max = configured ?? defaultMaxClientConnections(openFiles, vendorConnections);
  if (configured !== null && openFiles !== null && configured + vendorConnections + OWN_DESCRIPTORS > openFiles) {
    logger.warn(
      { maxClientConnections: configured, openFileLimit: openFiles, vendorConnections },
      "MAX_CLIENT_CONNECTIONS is over what the open-file limit leaves: with that many clients connected, vendor calls and Redis get no file descriptor (EMFILE). Raise the limit (ulimit -n, LimitNOFILE=, a container's nofile) or lower MAX_CLIENT_CONNECTIONS",
    );
  }
  // One line at most every 10 s for each: idle ones closed (the cap doing its job), new ones refused (clients turned away).
  const lines = { closedIdle: new LineEvery(10_000), refused: new LineEvery(10_000) };
  const since = { closedIdle: 0, refused: 0 };
  const connections = new ClientConnections(max, (atCap) => {
    const kind = atCap.refused > 0 ? 'refused' : 'closedIdle';
    since.closedIdle += atCap.closedIdle;
    since.refused += atCap.refused;
    if (lines[kind].due() === null) return;
    logger.warn(
      { maxClientConnections: max, open: atCap.open, ...since },
      kind === 'refused'
        ? 'Client connections at MAX_CLIENT_CONNECTIONS, all busy (requests, event streams, WebSockets): new connections refused'
        : 'Client connections at MAX_CLIENT_CONNECTIONS: the ones idle the longest closed to take new ones',
    );
    since.closedIdle = 0;
    since.refused = 0;
  });
  return connections;
}
