import { serverAudits } from 'graphql-http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './helpers/stack.js';

/**
 * graphql-http's audits of the GraphQL over HTTP spec, against the real server.
 * Every MUST passes; SHOULD and MAY are reported when they fail, not enforced.
 */
let stack: Stack;
let token: string;
beforeAll(async () => {
  stack = await startStack();
  token = await stack.token();
});
afterAll(() => stack.close());

const authedFetch = (input: RequestInfo | URL, init: RequestInit = {}) => {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
};

describe('GraphQL over HTTP spec (graphql-http audits)', () => {
  for (const audit of serverAudits({ url: () => stack.url, fetchFn: authedFetch })) {
    it(audit.name, async () => {
      const result = await audit.fn();
      if (audit.name.startsWith('MUST')) {
        expect(result.status === 'ok' ? 'ok' : `${result.status}: ${result.reason}`).toBe('ok');
      } else if (result.status !== 'ok') {
        console.warn(`[graphql-http] ${audit.name}: ${result.reason}`);
      }
    });
  }
});
