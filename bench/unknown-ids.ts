/**
 * `npx tsx bench/unknown-ids.ts [entry] [ids]`: what a client asking for
 * unknown ids does to the heap of a server run as `npm run start:prod` runs
 * it (its node flags, no Redis). Each id becomes a "no such entity" entry in
 * L1; the run sends `users(ids)` queries of 500 fresh unknown ids and prints
 * heap used, RSS and peak RSS every 50,000 ids, or how the server failed.
 *
 * entry: the server's compiled entry (default dist/main.js; `npm run build`
 * first). ids: how many unknown ids to send (default 400,000). Loopback only,
 * on free ports.
 */
import { SignJWT } from 'jose';
import { memoryMb, start, startProdNodeArgs, startUpstreams, UNLIMITED } from './harness.js';

const entry = process.argv[2] ?? 'dist/main.js';
const total = Number(process.argv[3] ?? 400_000);
const PER_QUERY = 500;
const SECRET = 'unknown-ids-bench-secret-0123456789abcdef';

const upstreams = await startUpstreams();
const server = await start(entry, { ...upstreams.env, ...UNLIMITED, AUTH_JWT_SECRET: SECRET, PORT: '0', LOG_LEVEL: 'warn' }, /GraphQL endpoint: (\S+)/, startProdNodeArgs());
const url = server.output().match(/GraphQL endpoint: (\S+)/)![1]!;
const pid = server.child.pid!;

async function heapUsedMb(): Promise<number> {
  const text = await (await fetch(new URL('/metrics', url))).text();
  const match = text.match(/^nodejs_heap_size_used_bytes (\S+)/m);
  return match ? Number(match[1]) / 2 ** 20 : NaN;
}

const token = await new SignJWT({ sub: 'unknown-ids-bench', scope: 'admin' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));

const startedAt = Date.now();
let sent = 0;
let non200 = 0;
try {
  while (sent < total) {
    const ids = Array.from({ length: PER_QUERY }, (_, i) => `nobody-${(sent + i).toString(36).padStart(10, '0')}`);
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: 'query($ids: [ID!]!) { users(ids: $ids) { id } }', variables: { ids } }),
    });
    if (res.status !== 200) non200++;
    await res.text();
    sent += PER_QUERY;
    if (sent % 50_000 === 0) {
      const seconds = ((Date.now() - startedAt) / 1000).toFixed(0);
      console.log(
        `${sent} ids: heap used ${(await heapUsedMb()).toFixed(0)} MB, RSS ${memoryMb(pid, 'VmRSS').toFixed(0)} MB, peak RSS ${memoryMb(pid, 'VmHWM').toFixed(0)} MB (${seconds} s)`,
      );
    }
  }
  console.log(`done: ${sent} unknown ids, ${non200} answers not 200`);
} catch (error) {
  await new Promise((resolve) => setTimeout(resolve, 500));
  const fatal =
    server
      .output()
      .split('\n')
      .find((line) => /out of memory|FATAL/i.test(line)) ?? '(no fatal error printed)';
  const cause = (error as Error & { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
  console.log(`the server stopped answering after ${sent} ids (${cause}); exit code ${server.child.exitCode}: ${fatal}`);
}
process.exit(0);
