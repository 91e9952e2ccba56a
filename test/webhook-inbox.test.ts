import { describe, expect, it } from 'vitest';
import { loggedLines } from './helpers/log-lines.js';
import { createWebhookInbox, PROCESSING_ATTEMPTS, type InboundEvent } from '../src/webhooks/inbox.js';
import { WebhookFailureLog } from '../src/webhooks/webhook-failure-log.js';

/** The in-process inbox (no REDIS_URL) with a 20 ms first backoff, and the lines it logs. */
function memoryInbox(handle: (event: InboundEvent) => Promise<void>) {
  const { logger, lines } = loggedLines('info');
  const failures = new WebhookFailureLog(logger);
  const inbox = createWebhookInbox(null, handle, logger, failures, null, 20);
  return { inbox, lines, close: () => inbox.close().finally(() => failures.close()) };
}
const event = (id: string): InboundEvent => ({ source: 'notifications', id, text: '{}' });

describe('the webhook inbox without Redis', () => {
  it('an event whose processing fails is tried again with backoff, and the events after it do not wait for it (it was never retried: the vendor had its 2xx)', async () => {
    const calls: string[] = [];
    let failuresLeft = 2;
    const { inbox, lines, close } = memoryInbox(async (e) => {
      calls.push(e.id);
      if (e.id === 'msg_1' && failuresLeft-- > 0) throw new Error('the primary did not answer');
    });
    expect(await inbox.accept(event('msg_1'))).toBe('accepted');
    expect(await inbox.accept(event('msg_2'))).toBe('accepted');
    await expect.poll(() => calls.filter((id) => id === 'msg_1').length, { timeout: 2000 }).toBe(3);
    // msg_2 ran right after msg_1's first attempt, not after its retries.
    expect(calls.slice(0, 2)).toEqual(['msg_1', 'msg_2']);
    expect(lines.filter((l) => l.msg === 'Webhook event processing failed; retrying').map((l) => l.attempts)).toEqual([1, 2]);
    expect(await inbox.accept(event('msg_1'))).toBe('duplicate');
    await close();
    expect(calls).toHaveLength(4);
    // Processed in the end: nothing was waiting at stop.
    expect(lines.filter((l) => l.msg.includes('lost (no REDIS_URL)'))).toEqual([]);
  });

  it(`an event failing every attempt is tried ${PROCESSING_ATTEMPTS} times, and its last line says no retry follows`, async () => {
    let calls = 0;
    const { inbox, lines, close } = memoryInbox(async () => {
      calls++;
      throw new Error('still failing');
    });
    await inbox.accept(event('msg_3'));
    // 20 + 40 + 80 + 160 ms of backoff.
    await expect.poll(() => lines.filter((l) => l.msg === 'Webhook event processing failed').length, { timeout: 3000 }).toBe(1);
    await new Promise((r) => setTimeout(r, 400));
    expect(calls).toBe(PROCESSING_ATTEMPTS);
    expect(lines.filter((l) => l.msg === 'Webhook event processing failed; retrying')).toHaveLength(PROCESSING_ATTEMPTS - 1);
    await close();
  });

  it('an event still waiting for its next attempt at stop is named in one warn line, and not tried after the stop', async () => {
    let calls = 0;
    const { inbox, lines, close } = memoryInbox(async () => {
      calls++;
      throw new Error('failing');
    });
    await inbox.accept(event('msg_4'));
    await expect.poll(() => calls, { timeout: 1000 }).toBe(1);
    await close();
    expect(lines.at(-1)).toMatchObject({ level: 40, events: ['notifications/msg_4'] });
    expect(lines.at(-1)!.msg).toContain('lost (no REDIS_URL)');
    await new Promise((r) => setTimeout(r, 100));
    expect(calls).toBe(1);
  });
});
