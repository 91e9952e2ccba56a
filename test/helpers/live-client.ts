import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import type { Stack } from './stack.js';

/** The code a refused subscription answered with (graphql-ws may carry it as an error message or a result with errors). */
export function codeOf(results: unknown[]): unknown {
  const first = results[0] as { error?: { extensions?: { code?: string } }[]; errors?: { extensions?: { code?: string } }[] } | undefined;
  return (first?.error ?? first?.errors)?.[0]?.extensions?.code;
}

/** A graphql-ws client of a stack's /graphql, as a browser connects: the token in connectionParams. */
export function wsClient(stack: Stack, token: string | null): Client {
  return createClient({
    url: stack.url.replace('http', 'ws'),
    webSocketImpl: WebSocket,
    lazy: true,
    retryAttempts: 0,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
  });
}

/** The first `n` results of a subscription (or its error), within `ms`. */
export function take(client: Client, query: string, variables: Record<string, unknown>, n = 1, ms = 3000): { results: Promise<unknown[]>; stop: () => void } {
  const got: unknown[] = [];
  let stop = () => undefined as void;
  const results = new Promise<unknown[]>((resolve) => {
    const timer = setTimeout(() => resolve(got), ms);
    const done = () => {
      clearTimeout(timer);
      resolve(got);
    };
    stop = client.subscribe(
      { query, variables },
      {
        next: (v) => {
          got.push(v);
          if (got.length >= n) done();
        },
        error: (e) => {
          got.push({ error: e });
          done();
        },
        complete: done,
      },
    );
  });
  return { results, stop: () => stop() };
}

/** Every result of a subscription as it comes (errors too), until stopped. */
export function collect(client: Client, query: string, variables: Record<string, unknown>): { events: unknown[]; stop: () => void } {
  const events: unknown[] = [];
  const stop = client.subscribe({ query, variables }, { next: (v) => void events.push(v), error: (e) => void events.push({ error: e }), complete: () => undefined });
  return { events, stop };
}

/** Resolves when `check` holds (polled every 25 ms), or after `ms` with false. */
export async function eventually(check: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= until) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
}
