import { mkdirSync } from 'node:fs';
import { SignJWT } from 'jose';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Dataset } from '../simulator/dataset.js';
import { describeWithBrowser, launchBrowser } from './helpers/browser.js';
import { ROOT, runScript, stopAll, type Child } from './helpers/processes.js';

/**
 * What a person sees, in a real browser (Debian's chromium, playwright-core):
 * the embedded default's GraphiQL runs its example query with the token it
 * was given, and the status page shows a faulted vendor failing. Screenshots
 * go to test-output/ (git-ignored); `npm run docs:screens` makes docs/' copies.
 */
const SCREENS = `${ROOT}test-output`;

describeWithBrowser('in a browser', () => {
  let app: Child;
  let browser: Browser;
  let url: string;
  let token: string;
  let analyticsUrl: string;

  beforeAll(async () => {
    mkdirSync(SCREENS, { recursive: true });
    app = runScript('src/main.ts', { PORT: '0' });
    [, url] = (await app.waitFor(/GraphQL endpoint: (http:\/\/127\.0\.0\.1:\d+\/graphql)/, 60_000)) as [string, string];
    [token] = (await app.waitFor(/eyJ[\w-]+\.[\w-]+\.[\w-]+/)) as unknown as [string];
    [, analyticsUrl] = (await app.waitFor(/analytics\s+(http:\/\/\S+)/)) as [string, string];
    browser = await launchBrowser();
  }, 90_000);
  afterAll(async () => {
    await browser?.close();
    await stopAll();
  });

  it('GraphiQL opens with the example operations and a working token: the dashboard query runs and its result is on the page', async () => {
    const page = await browser.newPage();
    await page.goto(url);
    await page.waitForSelector('.graphiql-execute-button', { timeout: 30_000 });
    // The dashboard query first, then one tab per operation in examples/operations/.
    expect(await page.locator('.graphiql-tab').count()).toBeGreaterThanOrEqual(8);
    await page.click('.graphiql-execute-button');
    await page.waitForFunction(() => document.querySelector('.graphiql-response')?.textContent?.includes('unreadNotificationCount'), null, { timeout: 20_000 });
    // CodeMirror lays text out with non-breaking spaces.
    const result = ((await page.locator('.graphiql-response').textContent()) ?? '').replace(/\s+/g, ' ');
    expect(result, result).toContain('Katherine Ritchie');
    expect(result).not.toContain('UNAUTHENTICATED');
    await page.screenshot({ path: `${SCREENS}/graphiql.png` });
    await page.close();
  }, 60_000);

  it('the status page needs an admin token, and shows a faulted vendor open and failing', async () => {
    const base = url.replace(/\/graphql$/, '');
    expect((await fetch(`${base}/status/data`)).status).toBe(401);
    const secretless = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('x').setExpirationTime('1h').sign(new TextEncoder().encode('not-the-secret'));
    expect((await fetch(`${base}/status/data`, { headers: { authorization: `Bearer ${secretless}` } })).status).toBe(401);

    await fetch(`${analyticsUrl}/__admin/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ errorRate: 1, errorStatus: 503 }) });
    // Users whose metrics nobody has asked for: no cache can answer, every query reaches the failing vendor.
    for (const user of new Dataset().users.slice(100, 115)) {
      await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: `query($u: ID!) { user(id: $u) { name metrics { pageViews } } }`, variables: { u: user.user_id } }),
      });
    }
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${base}/status#token=${token}`);
    await page.waitForSelector('body[data-loaded="true"]', { timeout: 20_000 });
    // The token left the address bar (it lives in this tab's sessionStorage).
    expect(page.url()).toBe(`${base}/status`);
    const analytics = page.locator('[data-source="analytics"]');
    await page.screenshot({ path: `${SCREENS}/status.png`, fullPage: true });
    expect(await analytics.getAttribute('class')).toContain('failing');
    expect(await analytics.getAttribute('data-breaker')).toBe('OPEN');
    expect(await analytics.locator('.badge').innerText()).toBe('open');
    expect(await page.locator('[data-source="identity"]').getAttribute('class')).not.toContain('failing');
    expect(await page.locator('#meta').innerText()).toMatch(/dead letters/);
    await page.screenshot({ path: `${SCREENS}/status.png`, fullPage: true });
    await page.close();
  }, 60_000);
});
