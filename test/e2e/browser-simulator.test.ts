import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { checkBooks } from '../../src/ledger/ledger';
import { waitFor } from '../support/harness';
import { startSandboxProcess, type SandboxProcess } from '../support/sandbox-process';

// Debian's Chromium (.ci/run installs it when missing); Playwright's own browser download is not used.
const CHROMIUM = ['/usr/bin/chromium', '/usr/lib/chromium/chromium-headless-shell'].find((p) => existsSync(p));
// The waitForFunction callbacks run in the browser; this module-local declaration types them without DOM libs.
declare const document: { querySelector<T = { textContent: string | null; dataset: Record<string, string> }>(selector: string): T | null };
type HTMLElement = { textContent: string | null; dataset: Record<string, string> };

const ARTIFACTS = path.resolve(__dirname, '..', '..', 'test-artifacts');

describe('the phone simulator in a browser', () => {
  let sandbox: SandboxProcess;
  let browser: Browser;
  beforeAll(async () => {
    if (!CHROMIUM) throw new Error('Chromium not found: install Debian\'s chromium (apt-get install chromium)');
    sandbox = await startSandboxProcess();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  }, 90_000);
  afterAll(async () => {
    await browser?.close();
    await sandbox?.stop();
  }, 30_000);

  test('when a person dials, buys and approves the M-Pesa prompt with a PIN, then the receipt SMS shows in the inbox', async () => {
    const page = await browser.newPage({ viewport: { width: 900, height: 800 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));

    await page.goto(`${sandbox.url}/simulator`);
    await page.fill('#phone', '0712345678');
    await page.click('#dial');
    await page.waitForFunction(() => document.querySelector<HTMLElement>('#screen')!.dataset.state === 'con');
    expect(await page.textContent('#screen')).toContain('1 Buy gold');

    for (const [input, next] of [['1', 'Enter amount'], ['500', 'Buy 0.0588 g']] as const) {
      await page.fill('#input', input);
      await page.click('#send');
      await page.waitForFunction((text) => document.querySelector('#screen')!.textContent!.includes(text), next);
    }
    await page.fill('#input', '1');
    await page.click('#send');
    await page.waitForFunction(() => document.querySelector<HTMLElement>('#screen')!.dataset.state === 'end');
    expect(await page.textContent('#screen')).toContain('M-Pesa prompt');

    await page.waitForSelector('#mpesa-prompt', { state: 'visible', timeout: 15_000 });
    expect(await page.textContent('#mpesa-prompt')).toContain('500');
    await page.fill('#mpesa-pin', '4321');
    await page.click('#mpesa-ok');
    await page.waitForSelector('#mpesa-prompt', { state: 'hidden' });

    await page.waitForSelector('#inbox .sms', { timeout: 15_000 });
    const sms = await page.locator('#inbox .sms').first().textContent();
    expect(sms).toMatch(/Gold purchase confirmed\. M-Pesa ref [A-Z0-9]{10}\. 0\.0588 g for KES 500/);

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'simulator-buy.png'), fullPage: true });
    expect(errors).toEqual([]);

    const db = sandbox.db();
    const order = await waitFor(() => db('orders').where({ msisdn: '254712345678', status: 'paid' }).first(), 'the paid order');
    expect(order.amount_cents).toBe(50_000);
    expect(await checkBooks(db)).toEqual([]);
  }, 60_000);
});
