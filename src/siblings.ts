import cluster from 'node:cluster';

/**
 * The other workers of this machine's node:cluster set, reached through the
 * primary over IPC: `send` broadcasts to every sibling (cache invalidations,
 * live events), `ask` puts a question to the primary, which holds what must
 * be one across workers without Redis (webhook ids seen). Null outside a
 * cluster worker.
 */
export interface Siblings {
  readonly index: number;
  readonly count: number;
  send(channel: string, payload: unknown): void;
  on(channel: string, handler: (payload: unknown) => void): void;
  ask(question: string, payload: unknown): Promise<unknown>;
}

/** IPC message types between workers and the primary. */
export const BROADCAST = 'gateway:broadcast';
export const ASK = 'gateway:ask';
export const ANSWER = 'gateway:answer';
/** A worker's word, every ALIVE_EVERY_MS, that its event loop turns (the primary kills one silent too long). */
export const ALIVE = 'gateway:alive';
export const ALIVE_EVERY_MS = 1000;

/** What workers and the primary say to each other over IPC. */
export interface SiblingMessage {
  type?: string;
  channel?: string;
  payload?: unknown;
  id?: number;
  question?: string;
}

let current: Siblings | null | undefined;

export function clusterSiblings(): Siblings | null {
  if (current !== undefined) return current;
  if (!cluster.isWorker || !process.send) return (current = null);
  const handlers = new Map<string, ((payload: unknown) => void)[]>();
  const waiting = new Map<number, (answer: unknown) => void>();
  let next = 0;
  process.on('message', (raw: unknown) => {
    const m = raw as SiblingMessage;
    if (m?.type === BROADCAST && m.channel) for (const h of handlers.get(m.channel) ?? []) h(m.payload);
    if (m?.type === ANSWER && m.id !== undefined) {
      waiting.get(m.id)?.(m.payload);
      waiting.delete(m.id);
    }
  });
  const send = (m: SiblingMessage) => {
    // A worker whose primary is gone is about to go too: nothing to tell.
    if (process.connected) process.send!(m);
  };
  send({ type: ALIVE });
  setInterval(() => send({ type: ALIVE }), ALIVE_EVERY_MS).unref();
  return (current = {
    index: Number(process.env.WORKER_INDEX ?? 0),
    count: Number(process.env.WORKERS ?? 1),
    send: (channel, payload) => send({ type: BROADCAST, channel, payload }),
    on: (channel, handler) => handlers.set(channel, [...(handlers.get(channel) ?? []), handler]),
    ask: (question, payload) =>
      new Promise((resolve, reject) => {
        const id = next++;
        const timer = setTimeout(() => {
          waiting.delete(id);
          reject(new Error(`the primary did not answer "${question}"`));
        }, 2000);
        waiting.set(id, (answer) => {
          clearTimeout(timer);
          resolve(answer);
        });
        send({ type: ASK, id, question, payload });
      }),
  });
}
