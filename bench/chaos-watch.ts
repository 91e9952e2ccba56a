/**
 * A subscriber for the chaos run, as a client runs one: a GraphQL subscription
 * over Server-Sent Events that reconnects when its stream ends or fails, and
 * writes down everything it heard and when it was connected, for the run to
 * judge afterwards (what was missed, heard twice, or left stale).
 */
import { sseMessages } from './sse-messages.js';

type Json = Record<string, unknown>;

export type WatchedField = 'notificationAdded' | 'unreadCount' | 'userUpdated';

export interface Heard {
  at: number;
  value: unknown;
  /** `code: message` of each error the event carried. */
  errors: string[];
}

/** One connected stream: from its 200 until it ended, and why. */
export interface Span {
  from: number;
  to?: number;
  why?: string;
}

export interface Watch {
  user: string;
  field: WatchedField;
  heard: Heard[];
  spans: Span[];
  /** Attempts to subscribe that got no stream: status and body, or the network error. */
  refused: string[];
  /** Keep-alive comments received: a stream that gets them but no events is open at the server, not cut. */
  keepAlives: number;
  stop(): Promise<void>;
}

const SELECTIONS: Record<WatchedField, string> = {
  notificationAdded: '{ id title }',
  unreadCount: '',
  userUpdated: '{ nickname }',
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function watch(url: string, token: string, user: string, field: WatchedField): Watch {
  let stopped = false;
  let current: AbortController | undefined;
  const query = `subscription W($u: ID!) { ${field}(userId: $u) ${SELECTIONS[field]} }`;

  async function connectOnce(w: Watch): Promise<void> {
    const ac = new AbortController();
    current = ac;
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        signal: ac.signal,
        headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query, variables: { u: user } }),
      });
    } catch (e) {
      if (!stopped) w.refused.push(String(e));
      return;
    }
    if (!res.ok || !res.body) {
      w.refused.push(`HTTP ${res.status} ${(await res.text().catch(() => '')).slice(0, 200)}`);
      return;
    }
    const span: Span = { from: Date.now() };
    w.spans.push(span);
    try {
      for await (const message of sseMessages(res.body)) {
        if (message.startsWith(':')) w.keepAlives++;
        if (/^event: complete$/m.test(message)) span.why = 'complete';
        const data = /^data: (.*)$/m.exec(message)?.[1];
        if (!/^event: next$/m.test(message) || !data) continue;
        const body = JSON.parse(data) as { data?: Json | null; errors?: { message: string; extensions?: { code?: string } }[] };
        w.heard.push({
          at: Date.now(),
          value: body.data?.[field] ?? null,
          errors: (body.errors ?? []).map((e) => `${e.extensions?.code ?? 'NONE'}: ${e.message}`),
        });
      }
      span.why ??= 'ended by the server';
    } catch (e) {
      span.why ??= stopped ? 'stopped' : `failed: ${String(e)}`;
    }
    span.to = Date.now();
  }

  let loop: Promise<void> = Promise.resolve();
  const w: Watch = {
    user,
    field,
    heard: [],
    spans: [],
    refused: [],
    keepAlives: 0,
    async stop() {
      stopped = true;
      current?.abort();
      await loop;
    },
  };
  loop = (async () => {
    while (!stopped) {
      await connectOnce(w);
      if (!stopped) await sleep(500);
    }
  })();
  return w;
}

/** Connected without a break from `from` until the watch was stopped. */
export function coveredFrom(w: Watch, from: number): boolean {
  const last = w.spans.at(-1);
  return last !== undefined && last.from <= from && (last.why === 'stopped' || last.why === undefined);
}
