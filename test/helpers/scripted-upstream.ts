import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A vendor that is not our simulation: each test scripts its answers route by
 * route, to check sources against UPSTREAMS.md rather than our own quirks.
 */
export interface ScriptedReply {
  status?: number;
  /** A header given as a list is sent as that many lines (a proxy that adds its own copy). */
  headers?: Record<string, string | string[]>;
  body?: unknown;
  /** Sent as is instead of `body` (bytes: a compressed answer). */
  raw?: string | Buffer;
}

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export type Script = (req: SeenRequest) => ScriptedReply | Promise<ScriptedReply>;

export class ScriptedUpstream {
  readonly seen: SeenRequest[] = [];
  private server: Server;
  url = '';
  script: Script = () => ({ status: 404, body: { error: 'unscripted' } });

  constructor() {
    this.server = createServer(async (req, res) => {
      let body = '';
      for await (const chunk of req) body += chunk;
      const seen = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body };
      this.seen.push(seen);
      const reply = await this.script(seen);
      const text = reply.raw ?? (reply.body === undefined ? '' : JSON.stringify(reply.body));
      res.writeHead(reply.status ?? 200, { 'content-type': 'application/json', ...reply.headers });
      res.end(text);
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
