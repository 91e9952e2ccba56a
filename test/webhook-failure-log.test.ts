import { describe, expect, it } from 'vitest';
import { loggedLines } from './helpers/log-lines.js';
import { WebhookFailureLog } from '../src/webhooks/webhook-failure-log.js';

describe('WebhookFailureLog', () => {
  it('a Redis outage refusing every event: five lines a source and kind per interval in full, the rest in one summary line by cause', () => {
    const { logger, lines } = loggedLines();
    const log = new WebhookFailureLog(logger, 5, 60_000);
    for (let i = 0; i < 40; i++) log.notStored('notifications', `msg_${i}`, i < 30 ? 'Redis did not store the event within 2000 ms' : "Stream isn't writeable");
    log.notStored('identity', 'msg_x', 'Redis did not store the event within 2000 ms');
    log.processingFailed('notifications', 'msg_1', 1, 'WRONGTYPE', true);
    log.processingFailed('notifications', 'msg_2', 5, 'WRONGTYPE', false);
    expect(lines.map((l) => l.msg)).toEqual([
      ...Array<string>(5).fill('Webhook event could not be stored; the vendor will retry'),
      'Webhook event could not be stored; the vendor will retry',
      'Webhook event processing failed; retrying',
      // Its last attempt: no retry follows.
      'Webhook event processing failed',
    ]);
    expect(lines[0]).toMatchObject({ level: 40, source: 'notifications', webhookId: 'msg_0', err: 'Redis did not store the event within 2000 ms' });
    expect(lines[5]).toMatchObject({ source: 'identity', webhookId: 'msg_x' });
    log.close();
    expect(lines).toHaveLength(9);
    expect(lines[8]).toMatchObject({
      level: 40,
      source: 'notifications',
      suppressed: 35,
      causes: { 'Redis did not store the event within 2000 ms': 25, "Stream isn't writeable": 10 },
      msg: "35 more notifications webhook events could not be stored in the last 60 s (Redis did not store the event within 2000 ms 25, Stream isn't writeable 10); the vendor will retry",
    });
  });

  it("dropping events' entries again failing (Redis away when they settle): five lines, then one summary", () => {
    const { logger, lines } = loggedLines();
    const log = new WebhookFailureLog(logger, 5, 60_000);
    for (let i = 0; i < 12; i++) log.settleFailed('Reached the max retries per request limit (which is 1)');
    expect(lines).toHaveLength(5);
    log.close();
    expect(lines.at(-1)).toMatchObject({
      level: 40,
      suppressed: 7,
      msg: '7 more webhook events could not be dropped or told again in the last 60 s (Reached the max retries per request limit (which is 1) 7); their entries expire by TTL',
    });
  });

  it('a wrong secret or an off clock refusing every event: five lines in full, the rest counted by cause in one line', () => {
    const { logger, lines } = loggedLines();
    const log = new WebhookFailureLog(logger, 5, 60_000);
    for (let i = 0; i < 30; i++) log.refused('notifications', 'no signature matches', 'no signature matches');
    for (let i = 0; i < 4; i++) log.refused('notifications', 'timestamp out of tolerance', `webhook-timestamp ${600 + i} s behind our clock (tolerance ±300 s)`);
    expect(lines).toHaveLength(5);
    expect(lines[0]).toMatchObject({ level: 40, source: 'notifications', reason: 'no signature matches', msg: 'Webhook refused' });
    log.close();
    expect(lines).toHaveLength(6);
    expect(lines[5]).toMatchObject({
      level: 40,
      source: 'notifications',
      suppressed: 29,
      causes: { 'no signature matches': 25, 'timestamp out of tolerance': 4 },
      msg: '29 more notifications webhook events were refused in the last 60 s (no signature matches 25, timestamp out of tolerance 4); the first lines say why',
    });
  });
});
