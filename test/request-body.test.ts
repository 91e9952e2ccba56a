import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { sharedStack } from './helpers/stack.js';

/**
 * Bodies that are too large, too slow or not UTF-8 get a JSON error a client
 * can read, over a real socket: curl (which asks for `100 Continue`), undici's
 * fetch (which sends the body at once) and a hand-written slow client.
 */
const MAX_BODY = 100 * 1024;
const TIMEOUT_MS = 1000;
const stack = sharedStack({ ops: (o) => ({ ...o, limits: { ...o.limits, maxBodyBytes: MAX_BODY, requestTimeoutMs: TIMEOUT_MS } }) });

interface RawAnswer {
  status: number;
  body: string;
  elapsedMs: number;
}

/** Sends `head` (and `chunks`, `everyMs` apart) over a plain socket; resolves with the first response. */
function raw(head: string, chunks: string[] = [], everyMs = 0): Promise<RawAnswer> {
  const { port } = new URL(stack.url);
  const startedAt = performance.now();
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1');
    let text = '';
    let timer: NodeJS.Timeout | undefined;
    socket.on('connect', () => {
      socket.write(head);
      let i = 0;
      const next = () => {
        if (i < chunks.length && !socket.destroyed) {
          socket.write(chunks[i++]!);
          timer = setTimeout(next, everyMs);
        }
      };
      next();
    });
    socket.on('data', (d) => (text += d.toString('utf8')));
    const done = () => {
      clearTimeout(timer);
      const match = /^HTTP\/1\.1 (\d{3})[^]*?\r\n\r\n([^]*)$/.exec(text);
      if (!match) return reject(new Error(`no HTTP response: ${JSON.stringify(text.slice(0, 200))}`));
      resolve({ status: Number(match[1]), body: match[2]!, elapsedMs: performance.now() - startedAt });
    };
    socket.on('close', done);
    socket.on('error', () => undefined);
  });
}

const headers = (length: number, extra = '') => `POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n${extra}\r\n`;

describe('request bodies', () => {
  it('over the limit with Expect: 100-continue: 413 with a JSON error before the body is sent (a raw socket, then curl)', async () => {
    const answer = await raw(headers(5 * 1024 * 1024, 'Expect: 100-continue\r\n'));
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body).errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE');

    const file = join(mkdtempSync(join(tmpdir(), 'gw-body-')), 'body.json');
    writeFileSync(file, JSON.stringify({ query: '{ viewer { id } }', variables: { pad: 'x'.repeat(5 * 1024 * 1024) } }));
    // curl asks for 100 Continue on a body this large and shows what it sent with -v.
    const { stdout, stderr } = await promisify(execFile)('curl', ['-sv', '-w', '\\n%{http_code}', '-H', 'content-type: application/json', '--data-binary', `@${file}`, stack.url], {
      maxBuffer: 1 << 20,
    });
    expect(stderr).toMatch(/Expect: 100-continue/i);
    const [json, code] = stdout.split('\n');
    expect(code).toBe('413');
    expect(JSON.parse(json!).errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('over the limit without Expect (undici fetch): the body is drained, the 413 and its JSON are read, not a reset', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await fetch(stack.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ viewer { id } }', variables: { pad: 'x'.repeat(5 * 1024 * 1024) } }),
      });
      expect(res.status).toBe(413);
      expect(((await res.json()) as { errors: { extensions: { code: string } }[] }).errors[0]!.extensions.code).toBe('PAYLOAD_TOO_LARGE');
    }
    // And the server answers the next request as usual.
    expect((await stack.gql(`{ __typename }`)).status).toBe(200);
  });

  it('a body trickling in slower than the request timeout: 408 with a JSON error within the timeout', async () => {
    const body = JSON.stringify({ query: '{ __typename }' });
    const answer = await raw(headers(body.length), body.split(''), 200);
    expect(answer.status).toBe(408);
    expect(JSON.parse(answer.body).errors[0].extensions.code).toBe('REQUEST_TIMEOUT');
    expect(answer.elapsedMs).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    expect(answer.elapsedMs).toBeLessThan(TIMEOUT_MS + 1000);
  });

  it('a JSON body that is not valid UTF-8: 400, and nothing runs', async () => {
    const before = (await stack.stats('identity')).totalCalls;
    const bytes = Buffer.concat([Buffer.from('{"query":"query($id: ID!) { user(id: $id) { id name } }","variables":{"id":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}}')]);
    const res = await fetch(stack.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: bytes });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { errors: { message: string }[] }).errors[0]!.message).toMatch(/UTF-8/);
    expect((await stack.stats('identity')).totalCalls).toBe(before);
    // The same query in valid UTF-8 runs.
    const ok = await fetch(stack.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await stack.token()}` },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    expect(ok.status).toBe(200);
  });

  it('a JSON body is parsed once and handed to yoga parsed; bodies that are no operation still get yoga’s 400 at once', async () => {
    const token = await stack.token();
    const post = (body: string, type = 'application/json') =>
      fetch(stack.url, { method: 'POST', headers: { 'content-type': type, authorization: `Bearer ${token}` }, body, signal: AbortSignal.timeout(5000) });
    // No entries: yoga must get the bytes (the adapter would otherwise read the already-read stream and wait).
    const answers: Record<string, [number, string]> = {
      '{}': [200, 'Must provide query string.'],
      '[]': [400, 'Batching is not supported.'],
      null: [400, 'POST body is expected to be object but received null'],
      '"{ __typename }"': [400, 'POST body is expected to be object but received string'],
      '42': [400, 'POST body is expected to be object but received number'],
    };
    for (const [body, [status, message]] of Object.entries(answers)) {
      const res = await post(body);
      expect([body, res.status, ((await res.json()) as { errors: { message: string }[] }).errors[0]!.message]).toEqual([body, status, message]);
    }
    const graphqlJson = await post(JSON.stringify({ query: '{ __typename }' }), 'application/graphql+json; charset=utf-8');
    expect(await graphqlJson.json()).toEqual({ data: { __typename: 'Query' } });
    const withVariables = await post(JSON.stringify({ query: 'query($id: ID!) { user(id: $id) { id } }', variables: { id: stack.userId(5) } }));
    expect(await withVariables.json()).toEqual({ data: { user: { id: stack.userId(5) } } });
    // Not a type yoga reads as JSON: neither we nor yoga parse it as JSON.
    expect((await post(JSON.stringify({ query: '{ __typename }' }), 'application/json-seq')).status).toBe(415);
  });
});
