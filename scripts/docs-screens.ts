/**
 * `npm run docs:screens`: the screenshots in docs/images/, made again from the
 * running demo in Debian's chromium. GraphiQL with the dashboard query run,
 * and the status page with the analytics vendor failing. Not part of
 * `npm test`: screenshots change with fonts and versions, and a person
 * decides when docs' copies should change.
 */
import { mkdirSync } from 'node:fs';
import { Dataset } from '../simulator/dataset.js';
import { launchBrowser } from '../test/helpers/browser.js';
import { ROOT, runScript, stopAll } from '../test/helpers/processes.js';

const out = `${ROOT}docs/images`;
mkdirSync(out, { recursive: true });
console.log('starting the demo (npm start)…');
const app = runScript('src/main.ts', { PORT: '0' });
const [, url] = (await app.waitFor(/GraphQL endpoint: (http:\/\/127\.0\.0\.1:\d+\/graphql)/, 60_000)) as [string, string];
const [token] = (await app.waitFor(/eyJ[\w-]+\.[\w-]+\.[\w-]+/)) as unknown as [string];
const [, analyticsUrl] = (await app.waitFor(/analytics\s+(http:\/\/\S+)/)) as [string, string];
const browser = await launchBrowser();
try {
  const ask = (query: string, variables: Record<string, unknown>) =>
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ query, variables }) });
  console.log('some traffic, then analytics failing…');
  const users = new Dataset().users;
  for (const u of users.slice(0, 40)) await ask(`query($u: ID!) { user(id: $u) { name metrics { pageViews } unreadNotificationCount } }`, { u: u.user_id });
  await fetch(`${analyticsUrl}/__admin/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ errorRate: 1, errorStatus: 503 }) });
  for (const u of users.slice(100, 120)) await ask(`query($u: ID!) { user(id: $u) { name metrics { pageViews } } }`, { u: u.user_id });

  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(url);
  await page.waitForSelector('.graphiql-execute-button', { timeout: 30_000 });
  await page.click('.graphiql-execute-button');
  await page.waitForFunction(() => document.querySelector('.graphiql-response')?.textContent?.includes('"data"'), null, { timeout: 20_000 });
  await page.screenshot({ path: `${out}/graphiql.png` });
  console.log(`wrote ${out}/graphiql.png`);

  await page.setViewportSize({ width: 1280, height: 940 });
  await page.goto(url.replace(/\/graphql$/, `/status#token=${token}`));
  await page.waitForSelector('body[data-loaded="true"]', { timeout: 20_000 });
  await page.screenshot({ path: `${out}/status.png`, fullPage: true });
  console.log(`wrote ${out}/status.png`);
} finally {
  await browser.close();
  await stopAll();
}
