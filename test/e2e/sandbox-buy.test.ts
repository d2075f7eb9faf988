import { spawn } from 'node:child_process';
import path from 'node:path';
import { checkBooks } from '../../src/ledger/ledger';
import { waitFor } from '../support/harness';
import { dial } from '../support/http';
import { startSandboxProcess, type SandboxProcess } from '../support/sandbox-process';

/**
 * The zero-setup promise: the built service started with no configuration at all (embedded
 * Postgres, Postgres-backed queue, both emulators) sells gold from the first USSD screen to the SMS.
 */
describe('the sandbox on a bare machine', () => {
  let sandbox: SandboxProcess;
  /** The sandbox's own AT_CALLBACK_SECRET, read from its banner as a person setting up would. */
  let atSecret: string;
  beforeAll(async () => {
    sandbox = await startSandboxProcess();
    atSecret = /USSD callback: +POST http:\/\/localhost:\d+\/ussd\/([A-Za-z0-9_-]{16,})\s/.exec(sandbox.output())?.[1] ?? 'not in the banner';
  }, 90_000);
  afterAll(async () => {
    expect(await sandbox.stop()).toBe(0);
  }, 30_000);

  test('when started with nothing configured, then it prints the simulator URL, the USSD code and the test numbers', async () => {
    const out = sandbox.output();
    expect(out).toContain(`${sandbox.url.replace('127.0.0.1', 'localhost')}/simulator`);
    expect(out).toContain('*384*1#');
    expect(out).toContain(`USSD callback:    POST ${sandbox.url.replace('127.0.0.1', 'localhost')}/ussd/${atSecret}`);
    expect(out).toMatch(/254708374149\s+pays/);
    expect(out).toMatch(/"queues":"postgres"/);
    expect(out).toMatch(/"mpesa":"emulator"/);
    const health = await fetch(`${sandbox.url}/health`);
    expect(await health.json()).toEqual({ status: 'ok', checks: { database: 'ok', queue: 'ok' } });
  });

  test('when USSD is posted without the sandbox\'s secret, then 404; the simulator is told the secret path', async () => {
    const form = new URLSearchParams({ sessionId: 'ATUid_nosecret', serviceCode: '*384*1#', phoneNumber: '+254708374149', networkCode: '63902', text: '' });
    for (const path of ['/ussd', '/ussd/emulator-callback', `/ussd/${atSecret.slice(0, -1)}`]) {
      expect((await fetch(`${sandbox.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form })).status).toBe(404);
    }
    expect(((await (await fetch(`${sandbox.url}/simulator/config`)).json()) as { ussdPath: string }).ussdPath).toBe(`/ussd/${atSecret}`);
  });

  test('when the approving test number buys, then the prompt is paid, the receipt SMS arrives and the books balance', async () => {
    const { last, screens } = await dial(sandbox.url, ['1', '500', '1'], { phoneNumber: '+254708374149', atSecret });
    expect(screens[2]).toMatch(/^CON Buy 0\.0588 g of gold for KES 500/);
    expect(last).toMatch(/^END Request received/);

    const inbox = await waitFor(async () => {
      const res = (await (await fetch(`${sandbox.url}/emulators/at/inbox/254708374149`)).json()) as { messages: Array<{ message: string }> };
      return res.messages.length > 0 && res.messages;
    }, 'the receipt SMS in the emulator inbox', 20_000);
    const receipt = /M-Pesa ref ([A-Z0-9]{10})/.exec(inbox[0]!.message)?.[1];
    expect(receipt).toBeDefined();
    expect(inbox[0]!.message).toContain('0.0588 g for KES 500');

    const db = sandbox.db();
    const order = await db('orders').join('stk_payments', 'stk_payments.order_id', 'orders.id').first('orders.status', 'stk_payments.mpesa_receipt');
    expect(order).toEqual({ status: 'paid', mpesa_receipt: receipt });
    const customer = await db('accounts').where({ kind: 'customer' }).first();
    expect(customer.credits_posted).toBe(58_823);
    // The demo pool was funded through the ledger and is what the buy drew on.
    const pool = await db('accounts').where({ code: 'pool' }).first();
    expect(pool.credits_posted - pool.debits_posted).toBe(1000 * 1_000_000 - 58_823);
    expect(await checkBooks(db)).toEqual([]);
    // The delivery report from the AT emulator came back to the service.
    await waitFor(async () => (await db('sms_messages').first('delivery_status')).delivery_status === 'Success', 'the delivery report');
  }, 60_000);

  test('when a number that rejects buys, then the reservation goes back to the pool and the SMS says so', async () => {
    await dial(sandbox.url, ['1', '100', '1'], { phoneNumber: '+254711223344', atSecret });
    const inbox = await waitFor(async () => {
      const res = (await (await fetch(`${sandbox.url}/emulators/at/inbox/254711223344`)).json()) as { messages: Array<{ message: string }> };
      return res.messages.length > 0 && res.messages;
    }, 'the failure SMS', 20_000);
    expect(inbox[0]!.message).toMatch(/did not go through/);
    const db = sandbox.db();
    expect(await db('orders').where({ msisdn: '254711223344' }).first('status', 'failure_code')).toEqual({ status: 'failed', failure_code: 'stk_1025' });
    expect(await checkBooks(db)).toEqual([]);
  }, 60_000);

  test('when `npm run phone` runs with the sandbox\'s PORT and the saver types the service code, then it dials the sandbox (its secret path learnt from /simulator/config)', async () => {
    const port = new URL(sandbox.url).port;
    const phone = spawn(process.execPath, [path.join(__dirname, '..', '..', 'dist', 'src', 'cli', 'phone.js'), '254712000777'], {
      // No --url and no secret: PORT alone, as after `PORT=… npm start`.
      env: { PATH: process.env.PATH ?? '', PORT: port },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    phone.stdout!.on('data', (c) => (out += c));
    phone.stderr!.on('data', (c) => (out += c));
    try {
      await waitFor(() => Promise.resolve(out.includes('test numbers:')), 'the phone to load the sandbox config', 15_000);
      phone.stdin!.write('*384*1#\n');
      await waitFor(() => Promise.resolve(out.includes('1 Buy gold')), 'the main menu on the terminal phone', 15_000);
      expect(out).toContain(`on http://127.0.0.1:${port}`);
    } finally {
      phone.stdin!.write('q\n');
      await new Promise((r) => phone.once('exit', r));
    }
  });
});
