import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** Debian's Chromium (apt-get install chromium), driven by playwright-core: no browser download. */
export const CHROMIUM = process.env.MIRA_CHROMIUM || '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM);
export const noChromiumReason = `no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set MIRA_CHROMIUM)`;
/** CI installs Chromium (.ci/run), so there a missing one is a failure, not a skip. */
export const chromiumRequired = Boolean(process.env.CI);

export const launchChromium = (): Promise<Browser> => chromium.launch({ executablePath: CHROMIUM, args: ['--disable-gpu', '--disable-dev-shm-usage'] });
