import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { EMULATOR_CALLBACK_SECRET } from '../../src/config';
import { checkBooks } from '../../src/ledger/ledger';
import { waitFor } from '../support/harness';
import { OPS_TOKEN } from '../support/ops';
import { startSandboxProcess, type SandboxProcess } from '../support/sandbox-process';
import { stkCallbackBody } from '../support/vendors';

// Debian's Chromium (.ci/run installs it when missing); Playwright's own browser download is not used.
const CHROMIUM = ['/usr/bin/chromium', '/usr/lib/chromium/chromium-headless-shell'].find((p) => existsSync(p));
// The evaluate callbacks run in the browser; these module-local declarations type them without DOM libs.
declare const document: { title: string; querySelector(selector: string): unknown };
type Storage = { length: number; key(i: number): string | null; getItem(k: string): string | null };
declare const sessionStorage: Storage;
declare const localStorage: Storage;

const ARTIFACTS = path.resolve(__dirname, '..', '..', 'test-artifacts');
const PHONE = '254712300001'; // not a scripted emulator number: its prompt stays open, so our callback decides
const MARKUP = '<img src=x onerror="document.title=\'pwned\'"><b id="injected">M-Pesa</b>';

describe('the operator console in a browser', () => {
  let sandbox: SandboxProcess;
  let browser: Browser;
  beforeAll(async () => {
    if (!CHROMIUM) throw new Error('Chromium not found: install Debian\'s chromium (apt-get install chromium)');
    sandbox = await startSandboxProcess({ OPS_API_TOKEN: OPS_TOKEN });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  }, 90_000);
  afterAll(async () => {
    await browser?.close();
    await sandbox?.stop();
  }, 30_000);

  /** As ops-review.test.ts does it: a success callback whose amount is not the order's leaves it in review. */
  async function buyInReview() {
    const res = await fetch(`${sandbox.url}/trade/buy`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPS_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ amountKes: 500, phoneNumber: PHONE }),
    });
    expect(res.status).toBe(201);
    const { orderId } = (await res.json()) as { orderId: string };
    const db = sandbox.db();
    const payment = await waitFor(() => db('stk_payments').where({ order_id: orderId }).whereNotNull('checkout_request_id').first(), 'the accepted push', 15_000);
    const callback = await fetch(`${sandbox.url}/mpesa/callback/${EMULATOR_CALLBACK_SECRET}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(stkCallbackBody({ checkoutRequestId: payment.checkout_request_id, resultCode: 0, amount: 5, receipt: 'RVW0000001', phone: PHONE })),
    });
    expect(callback.status).toBe(200);
    await waitFor(() => db('orders').where({ id: orderId, status: 'review' }).first(), 'the order in review');
    return orderId;
  }

  /** Every value the page keeps in the browser: sessionStorage (this tab) and localStorage (every tab, forever). */
  const stored = (page: import('playwright-core').Page) =>
    page.evaluate(() => {
      const all = (s: Storage) => Array.from({ length: s.length }, (_, i) => s.getItem(s.key(i)!) ?? '');
      return { tab: all(sessionStorage), everywhere: all(localStorage) };
    });

  test('when an operator signs in, sees the pool and alerts, and credits a review order, then the audit trail shows it and nothing on the page became markup', async () => {
    const orderId = await buyInReview();
    const db = sandbox.db();
    const { reference } = await db('orders').where({ id: orderId }).first('reference');
    await db('ops_alerts').insert([
      { kind: 'payment_unconfirmed', severity: 'warn', order_id: orderId, message: 'check the M-Pesa statement for this order', dedupe_key: `console-e2e-${orderId}` },
      { kind: 'orphan_payment', severity: 'error', message: `${MARKUP} payment from 0712300009 matches no order`, dedupe_key: 'console-e2e-orphan' },
    ]);

    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    // Every console error counts (a CSP violation is one), except the wrong token's own 401 below.
    page.on('console', (m) => m.type() === 'error' && !/status of 401/.test(m.text()) && problems.push(m.text()));
    // Confirmations are accepted; the alert's close asks what was done.
    page.on('dialog', (d) => void (d.type() === 'prompt' ? d.accept('refunded on the M-Pesa portal') : d.accept()));
    page.on('response', (r) => r.status() === 404 && problems.push(`404 ${r.url()}`));

    await page.goto(`${sandbox.url}/console`);
    // A wrong token: back to the form, told so, and nothing kept.
    await page.fill('#token', 'not-the-ops-token-000000000000');
    await page.press('#token', 'Enter');
    await page.locator('#login-error', { hasText: 'refused' }).waitFor();
    expect(await page.isVisible('#login')).toBe(true);
    expect(await stored(page)).toEqual({ tab: [], everywhere: [] });

    await page.fill('#token', OPS_TOKEN);
    await page.press('#token', 'Enter');
    await page.locator('#pool', { hasText: 'balanced' }).waitFor();
    // The token is kept for this tab only, and never in a cookie.
    expect(await stored(page)).toEqual({ tab: [OPS_TOKEN], everywhere: [] });
    expect(await page.context().cookies()).toEqual([]);
    const pool = await page.textContent('#pool');
    expect(pool).toContain('Reserved (pending buys)0.0588 g'); // the review order's held reservation
    await page.locator('#review-count', { hasText: '1' }).waitFor();
    await page.locator('#alerts-count', { hasText: '2' }).waitFor();

    // The alert's markup is shown as text, its phone masked.
    const alerts = await page.textContent('#alerts');
    expect(alerts).toContain('<b id="injected">M-Pesa</b>');
    expect(alerts).toContain('0712****09');
    expect(alerts).not.toContain('0712300009');
    expect(await page.evaluate(() => document.querySelector('#injected') === null && document.querySelector('#alerts img') === null)).toBe(true);
    expect(await page.evaluate(() => document.title)).toBe('Gold wallet operator console');

    // Open the review item: a buy shows the buy actions only.
    await page.click(`#review tr[data-order="${orderId}"] button`);
    await page.locator('#detail-title', { hasText: reference }).waitFor();
    expect(await page.locator('#resolve-actions input[type=radio]').evaluateAll((els) => els.map((e) => (e as unknown as { value: string }).value))).toEqual(['credit', 'refund_note', 'close']);

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'console-review.png'), fullPage: true });

    await page.check('#resolve-actions input[value=credit]');
    await page.fill('#resolve input[name=note]', 'Paid KES 500 per the M-Pesa statement <script>alert(1)</script>');
    await page.fill('#resolve input[name=operator]', 'alice');
    await page.click('#resolve button[type=submit]');
    await page.locator('#detail-resolutions', { hasText: 'alice' }).waitFor();
    const trail = await page.textContent('#detail-resolutions');
    expect(trail).toContain('credit');
    expect(trail).toContain('review → paid');
    expect(trail).toContain('<script>alert(1)</script>');
    await page.locator('#review-count', { hasText: '0' }).waitFor();
    await page.locator('#alerts-count', { hasText: '1' }).waitFor(); // the order's alert closed with it

    // The orphan payment was settled by hand: close its alert, with what was done and who did it.
    await page.click('#alerts button[data-alert]');
    await page.locator('#alerts-count', { hasText: '0' }).waitFor();
    expect(await db('ops_alerts').where({ dedupe_key: 'console-e2e-orphan' }).first('resolution')).toEqual({ resolution: 'closed by alice: refunded on the M-Pesa portal' });
    expect(await page.isHidden('#resolve')).toBe(true);

    expect(await db('orders').where({ id: orderId }).first('status')).toEqual({ status: 'paid' });
    expect(await db('order_resolutions').where({ order_id: orderId }).select('action', 'operator')).toEqual([{ action: 'credit', operator: 'alice' }]);
    expect(await checkBooks(db)).toEqual([]);

    // The CSV comes through the bearer header and is handed over as a download.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export button[type=submit]')]);
    const csv = readFileSync((await download.path())!, 'utf8');
    expect(csv.split('\r\n')[0]).toMatch(/^created_at,order_id,/);
    expect(csv).toContain(`${orderId},${reference},buy,paid,${PHONE}`);

    await page.screenshot({ path: path.join(ARTIFACTS, 'console.png'), fullPage: true });

    // A sell order in review offers the sell actions only (the answer is staged in the browser: the
    // page's choice of actions is what is checked here, not the payout side).
    const sellId = '00000000-0000-4000-8000-00000000051e';
    const sellOrder = { id: sellId, reference: 'GLDSELLREVIEW', kind: 'sell', status: 'review', phone: '2547******02', amountKes: '1000', grams: '0.1213', priceKesPerGram: '8,245', failureCode: 'payout_unknown', failureReason: null, createdAt: new Date().toISOString(), updatedAt: new Date().toISOString() };
    await page.route(`**/ops/orders/${sellId}`, (r) => r.fulfill({ json: { checkoutRequestId: null, order: sellOrder, payment: null, reservation: null, callbacks: [], resolutions: [] } }));
    await page.route('**/ops/orders?status=review*', (r) => r.fulfill({ json: { orders: [{ ...sellOrder, checkoutRequestId: null, receipt: null, resultCode: null }] } }));
    await page.click('#refresh');
    await page.click(`#review tr[data-order="${sellId}"] button`);
    await page.locator('#detail-title', { hasText: 'GLDSELLREVIEW' }).waitFor();
    expect(await page.locator('#resolve-actions input[type=radio]').evaluateAll((els) => els.map((e) => (e as unknown as { value: string }).value))).toEqual(['paid_out', 'not_paid']);
    await page.unrouteAll();

    await page.click('#signout');
    expect(await page.isVisible('#login')).toBe(true);
    expect((await stored(page)).tab).not.toContain(OPS_TOKEN);
    expect(problems).toEqual([]);
  }, 90_000);
});
