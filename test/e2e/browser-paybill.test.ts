import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { checkBooks } from '../../src/ledger/ledger';
import { waitFor } from '../support/harness';
import { startSandboxProcess, type SandboxProcess } from '../support/sandbox-process';

const CHROMIUM = ['/usr/bin/chromium', '/usr/lib/chromium/chromium-headless-shell'].find((p) => existsSync(p));
declare const document: { querySelector<T = { textContent: string | null; dataset: Record<string, string> }>(selector: string): T | null };
type HTMLElement = { textContent: string | null; dataset: Record<string, string> };

const ARTIFACTS = path.resolve(__dirname, '..', '..', 'test-artifacts');

/**
 * Pay by Paybill on the bare-machine sandbox: the phone simulator's "Pay by M-Pesa menu" (Paybill ->
 * business number -> account number -> amount -> PIN) goes through the Daraja emulator's validation and
 * confirmation to the service, and the gold receipt SMS with the M-Pesa TransID lands in the inbox.
 */
describe('paying by Paybill from the phone simulator', () => {
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

  test('when a person pays KES 500 to Paybill 174379 with their number as account, then the receipt SMS names the TransID', async () => {
    const page = await browser.newPage({ viewport: { width: 900, height: 800 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));

    await page.goto(`${sandbox.url}/simulator`);
    await page.fill('#phone', '0712340099');
    await page.waitForSelector('#paybill', { state: 'visible' });
    await page.click('#paybill');
    for (const [input, next] of [['174379', 'Enter account no.'], ['0712340099', 'Enter amount'], ['500', 'Enter M-PESA PIN']] as const) {
      await page.waitForFunction(() => document.querySelector<HTMLElement>('#screen')!.dataset.state === 'con');
      await page.fill('#input', input);
      await page.click('#send');
      await page.waitForFunction((text) => document.querySelector('#screen')!.textContent!.includes(text), next);
    }
    await page.fill('#input', '4321');
    await page.click('#send');
    await page.waitForFunction(() => document.querySelector<HTMLElement>('#screen')!.dataset.state === 'end');
    expect(await page.textContent('#screen')).toContain('Payment sent');

    await page.waitForSelector('#inbox .sms', { timeout: 15_000 });
    const sms = await page.locator('#inbox .sms').first().textContent();
    const transId = /M-Pesa ref ([A-Z0-9]{10})\. 0\.0588 g for KES 500/.exec(sms ?? '')?.[1];
    expect(transId).toBeDefined();

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'simulator-paybill.png'), fullPage: true });
    expect(errors).toEqual([]);

    const db = sandbox.db();
    const payment = await waitFor(() => db('c2b_payments').where({ trans_id: transId }).first(), 'the C2B payment');
    expect(payment).toMatchObject({ status: 'credited', msisdn: '254712340099', amount_cents: 50_000 });
    expect(await db('orders').where({ id: payment.order_id }).first()).toMatchObject({ status: 'paid', source_key: `c2b:${transId}` });
    expect(await checkBooks(db)).toEqual([]);
  }, 60_000);
});
