import { randomUUID } from 'node:crypto';
import { loadConfig, type RunConfig } from '../../src/config';
import type { Queues } from '../../src/infra/backends';
import { Outbox } from '../../src/infra/outbox';
import { accountIdByCode, checkBooks, createPendingTransfer, ensureCustomerAccount, resolvePendingTransfer, SYSTEM_ACCOUNTS } from '../../src/ledger/ledger';
import { createLogger } from '../../src/lib/logger';
import type { Msisdn } from '../../src/lib/msisdn';
import { microgramsForPayout, UG_PER_GRAM } from '../../src/lib/units';
import { findOrCreateCustomer } from '../../src/orders/customers';
import { placeSellOrder } from '../../src/payments/sell/place-sell-order';
import { waitFor } from '../support/harness';
import { startSandboxProcess, type SandboxProcess } from '../support/sandbox-process';

/**
 * The zero-setup sandbox sells too: the built service with nothing configured generates its B2C key
 * pair, the Daraja emulator checks the encrypted initiator credential, pays, and posts its Result (or a
 * queue timeout, answered by Transaction Status) back to the service over HTTP; queues on Postgres.
 * The sale is placed with placeSellOrder against the sandbox's database (the menus reach the same call);
 * its job is left to the sandbox's own outbox sweep.
 */
describe('selling in the sandbox on a bare machine', () => {
  let sandbox: SandboxProcess;
  beforeAll(async () => {
    sandbox = await startSandboxProcess();
  }, 90_000);
  afterAll(async () => {
    expect(await sandbox.stop()).toBe(0);
  }, 30_000);

  const SELL_PRICE = 800_000;
  // The service's own view of the configuration (emulator mode): selling is on, limits at their defaults.
  const config: RunConfig = { ...loadConfig({ PORT: '3000' }), databaseUrl: 'unused' };
  const neverRelays = new Proxy({}, { get: () => ({ add: async () => Promise.reject(new Error('left to the sandbox sweep')) }) }) as Queues;

  async function sell(msisdn: Msisdn, amountKes: number) {
    const db = sandbox.db();
    const customer = await findOrCreateCustomer(db, msisdn);
    await db.transaction(async (trx) => {
      const id = `test-gift-${randomUUID()}`;
      await createPendingTransfer(trx, { id, debitAccountId: await accountIdByCode(trx, SYSTEM_ACCOUNTS.pool), creditAccountId: await ensureCustomerAccount(trx, customer.id), amount: UG_PER_GRAM, reference: 'test gift' });
      await resolvePendingTransfer(trx, id, 'posted');
    });
    const outbox = new Outbox(db, neverRelays, createLogger('silent'));
    const placed = await placeSellOrder(
      { db, outbox, config },
      { customerId: customer.id, msisdn, amountKes, priceCentsPerGram: SELL_PRICE, gramsUg: microgramsForPayout(amountKes * 100, SELL_PRICE), sourceKey: `test:${randomUUID()}` },
    );
    if (!placed.ok) throw new Error(`refused: ${placed.reason}`);
    return placed.orderId;
  }

  test('when started, then the banner lists the B2C test numbers', () => {
    expect(sandbox.output()).toMatch(/Selling \(B2C payout\) by receiving number:\n\s+254708374149\s+paid/);
  });

  test.each([
    ['254708374149', 'one Result'],
    ['254700000103', 'a queue timeout, then Transaction Status'],
  ])('when %s sells (%s), then the sale is paid, the receipt SMS reaches the inbox and the books balance', async (msisdn) => {
    const orderId = await sell(msisdn as Msisdn, 1000);
    const db = sandbox.db();
    const status = await waitFor(async () => {
      const s = (await db('orders').where({ id: orderId }).first('status')).status as string;
      return ['paid', 'failed', 'review'].includes(s) && s;
    }, 'the emulator to settle the sale', 20_000);
    expect(status).toBe('paid');
    const payout = await db('payouts').where({ order_id: orderId }).first();
    expect(payout).toMatchObject({ status: 'paid', result_code: '0', attempts: 1 });
    const inbox = await waitFor(async () => {
      const res = (await (await fetch(`${sandbox.url}/emulators/at/inbox/${msisdn}`)).json()) as { messages: Array<{ message: string }> };
      return res.messages.find((m) => m.message.startsWith('Gold sale paid')) ?? null;
    }, 'the receipt SMS in the emulator inbox', 20_000);
    expect(inbox.message).toBe(`Gold sale paid. M-Pesa ref ${payout.transaction_id}. Sold 0.1250 g for KES 1,000 at KES 8,000/g. Gold balance 0.8750 g.`);
    expect(await checkBooks(db)).toEqual([]);
  });
});
