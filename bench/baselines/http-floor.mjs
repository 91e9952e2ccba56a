/**
 * Not a peer but a bound: a plain node:http server that reads the request and
 * writes a fixed JSON answer the size of a dashboard, nothing else. What no
 * gateway's cached answer can cost less than on this machine (latency-floor.ts
 * reads its p99 / p50, instructions.ts its instructions a request).
 */
import { createServer } from 'node:http';

const body = Buffer.from(
  JSON.stringify({
    data: {
      user: {
        id: 'auth0|0000',
        name: 'x'.repeat(40),
        avatarUrl: null,
        metrics: { pageViews: 1, sessions: 2, conversionRate: 0.5 },
        unreadNotificationCount: 3,
        notifications: {
          totalCount: 9,
          edges: Array.from({ length: 5 }, (_, i) => ({ node: { id: String(i).repeat(36), title: 't'.repeat(30), read: false, createdAt: '2026-01-02T03:04:05.000Z' } })),
        },
      },
    },
  }),
);

const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  });
});
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => console.log(`GraphQL endpoint: http://127.0.0.1:${server.address().port}/graphql`));
