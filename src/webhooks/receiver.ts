import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../logger.js';
import type { RedisSettings } from '../config-types.js';
import type { Caches } from '../sources/caches.js';
import type { AnySourceDefinition, SourceWebhooks } from '../sources/define-source.js';
import type { DriftRecorder } from '../sources/drift.js';
import { vendorText } from '../sources/upstream-http.js';
import { SettleAgain } from '../cache/settle-again.js';
import type { LiveEvents, LiveTopic } from '../realtime/live-events.js';
import type { Siblings } from '../siblings.js';
import { createWebhookInbox, REMEMBER_IDS_MS, type InboundEvent, type WebhookInbox } from './inbox.js';
import { WebhookFailureLog } from './webhook-failure-log.js';
import { verifyWebhook, webhookKey } from './standard-webhooks.js';

/** An event a version before the text was kept stored, parsed (a queue in Redis may still hold some during a rollout). */
interface StoredBefore {
  source: string;
  id: string;
  body: unknown;
}

export type WebhookOutcome = 'accepted' | 'duplicate' | 'bad_request' | 'bad_signature' | 'unknown_source' | 'unavailable';

export interface WebhookReceiverOptions {
  definitions: readonly AnySourceDefinition[];
  /** Source name → `whsec_…`; a source with webhooks but no secret has no receiver (404). */
  secrets: Partial<Record<string, string>>;
  caches: Caches;
  /** Where what an event changed is published for subscriptions. */
  live: LiveEvents;
  redis: RedisSettings | null;
  logger: Logger;
  /** Under WORKERS=N without Redis: webhook ids seen are held by the primary. */
  siblings?: Siblings | null;
  /** Each request's outcome, for metrics. */
  onOutcome?: (source: string, outcome: WebhookOutcome) => void;
  /** What an event dropped is dropped again this long after, its re-read signals sent again (WEBHOOK_SETTLE_MS; 0: once). */
  settleMs?: number;
  /** A source's drift recorder: its events are walked for drift as its responses are. */
  drift?: (source: string) => DriftRecorder | undefined;
}

export interface WebhookReceiver {
  /** `POST /webhooks/<source>` with its body already read (and bounded) by the HTTP layer. */
  handle(req: IncomingMessage, res: ServerResponse, body: Buffer): void;
  close(): Promise<void>;
}

/**
 * Vendors' events in: `POST /webhooks/<source>`. The signature is checked over
 * the raw body (Standard Webhooks) before anything is parsed; a bad one gets
 * 401, a malformed request or a timestamp outside ±5 minutes 400, with no
 * detail either way. A valid event is stored (WebhookInbox) before the 2xx,
 * so nothing accepted is lost, and an id already accepted gets a 2xx and no
 * second effect. Processing, after: the source says what the event changed,
 * and those entities are invalidated in both tiers on every instance.
 */
export function createWebhookReceiver(options: WebhookReceiverOptions): WebhookReceiver {
  const { logger } = options;
  const receivers = new Map<string, { key: Buffer; webhooks: SourceWebhooks }>();
  for (const d of options.definitions) {
    const secret = options.secrets[d.name];
    if (d.webhooks && secret) receivers.set(d.name, { key: webhookKey(secret), webhooks: d.webhooks });
  }
  if (receivers.size > 0) logger.info({ sources: [...receivers.keys()] }, `Webhooks received at POST /webhooks/<source> for ${[...receivers.keys()].join(', ')}`);

  type Changed = NonNullable<ReturnType<SourceWebhooks['changes']>>;
  const drop = (changed: Changed) => Promise.all(changed.entities.map((entity) => options.caches.entity(entity).invalidate(changed.groups)));
  // A vendor may send its event before its own reads show the change (reads from a replica): a read made on the event
  // can cache, and tell subscribers, what was there before. Dropped again, and told again, once that has settled.
  const failures = new WebhookFailureLog(logger);
  const settling = new SettleAgain(options.settleMs ?? 0, (err: unknown) => failures.settleFailed((err as Error).message));
  const settle = (changed: Changed) =>
    settling.after(async () => {
      await drop(changed);
      for (const p of changed.published ?? []) if (p.again) await options.live.publish(p.topic as LiveTopic, p.key, p.payload as never);
    });
  const inspect = (source: string, webhooks: SourceWebhooks, body: unknown) => {
    const type = (body as { type?: unknown } | null)?.type;
    const shape = typeof type === 'string' ? webhooks.shapes?.[type] : undefined;
    if (shape) options.drift?.(source)?.inspect(`webhook ${type}`, body, shape, !shape.safeParse(body).success);
  };
  const process = async (event: InboundEvent | StoredBefore) => {
    const receiver = receivers.get(event.source);
    if (!receiver) return;
    const body: unknown = 'text' in event ? JSON.parse(event.text) : event.body;
    inspect(event.source, receiver.webhooks, body);
    const changed = receiver.webhooks.changes(body);
    if (!changed) return;
    await drop(changed);
    // After the invalidation: a subscriber that reads again gets the new data.
    // Not announced (Redis away): processing fails, and the event is processed again later (its job's retries).
    for (const p of changed.published ?? []) {
      // Its once key lasts as long as the event ids do: a vendor's retries and re-signed copies come within that.
      const once = p.once === undefined ? undefined : { key: `${event.source} ${p.once}`, ttlMs: REMEMBER_IDS_MS };
      await options.live.publish(p.topic as LiveTopic, p.key, p.payload as never, once);
    }
    settle(changed);
  };
  const inbox: WebhookInbox | null = receivers.size > 0 ? createWebhookInbox(options.redis, process, logger, failures, options.siblings ?? null) : null;

  const answer = (res: ServerResponse, source: string, outcome: WebhookOutcome, status: number, body: Record<string, unknown>) => {
    options.onOutcome?.(source, outcome);
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };

  return {
    handle(req, res, body) {
      const source = decodeURIComponent((req.url ?? '').split('?')[0]!.slice('/webhooks/'.length));
      const receiver = receivers.get(source);
      if (!receiver || !inbox) return answer(res, 'unknown', 'unknown_source', 404, { error: 'not found' });
      const verdict = verifyWebhook(req.headers, body, receiver.key);
      if (!verdict.ok) {
        failures.refused(source, verdict.cause, verdict.reason);
        return answer(res, source, verdict.status === 401 ? 'bad_signature' : 'bad_request', verdict.status, { error: verdict.status === 401 ? 'unauthorized' : 'bad request' });
      }
      if (verdict.timestampUnusual) {
        options.drift?.(source)?.header('webhook', 'webhook-timestamp', 'unreadable', 'Unix seconds (13 digits read as Unix milliseconds, a fraction as seconds)');
      }
      const text = vendorText(body);
      try {
        JSON.parse(text);
      } catch {
        failures.refused(source, 'body not JSON', 'the body is not JSON');
        return answer(res, source, 'bad_request', 400, { error: 'bad request' });
      }
      inbox.accept({ source, id: verdict.id, text }).then(
        (outcome) => answer(res, source, outcome, 202, { [outcome]: true }),
        (err: unknown) => {
          // Not stored: the vendor must try again (its retry schedule), so not a 2xx.
          failures.notStored(source, verdict.id, (err as Error).message);
          answer(res, source, 'unavailable', 503, { error: 'unavailable' });
        },
      );
    },
    close: async () => {
      settling.close();
      await inbox?.close();
      failures.close();
    },
  };
}
