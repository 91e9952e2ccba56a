import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { describe } from 'vitest';

/**
 * Debian's chromium driven by playwright-core (no browser download: `.ci/run`
 * installs the `chromium` package when it is missing). Without it a browser
 * suite fails in CI and is skipped, loudly, elsewhere.
 */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const available = existsSync(CHROMIUM);
const required = process.env.CI === 'true';

export const describeWithBrowser: typeof describe = ((name: string, fn: () => void) => {
  if (available) return describe(name, fn);
  if (required) {
    return describe(name, () => {
      throw new Error(`${CHROMIUM} is required in CI but missing: apt-get install chromium`);
    });
  }
  console.warn(`\n!!! SKIPPING "${name}": no ${CHROMIUM} (apt-get install chromium). CI fails without it.\n`);
  return describe.skip(name, fn);
}) as typeof describe;

/** Headless, with the flags that keep it off the network this machine does not have (background updates, sync, QUIC). */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
