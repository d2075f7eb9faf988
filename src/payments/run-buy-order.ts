import type { Db } from '../db/knex';
import type { Outbox } from '../jobs/outbox';
import { accountIdByCode, createPendingTransfer, ensureCustomerAccount, InsufficientFunds, SYSTEM_ACCOUNTS } from '../ledger/ledger';
import { VendorError } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { Msisdn } from '../lib/msisdn';
import type { DarajaClient } from '../vendors/daraja-client';
import { failBuyOrder } from './buy-outcomes';
import { loadBuyOrder, reservationId, transitionOrder, type BuyOrder } from './orders';

export interface BuyDeps {
  db: Db;
  outbox: Outbox;
  daraja: DarajaClient;
  log: Logger;
}

const STK_DESCRIPTION = 'Gold purchase'; // Daraja: at most 13 characters

/**
 * The buy job: reserve the gold, then ask M-Pesa to prompt the payer. Each step moves the order by
 * a conditional update, so a retried or duplicated job resumes where the last one stopped and
 * never reserves twice or pushes again after a push was accepted.
 */
export async function runBuyOrder(deps: BuyDeps, orderId: string, finalAttempt: boolean): Promise<void> {
  const order = await loadBuyOrder(deps.db, orderId);
  if (!order) {
    deps.log.error({ orderId }, 'buy job for an unknown order');
    return;
  }
  if (order.status === 'created' && !(await reserve(deps, order))) return;
  // Record before calling: the order is stk_requested before Daraja hears of it.
  await transitionOrder(deps.db, order.id, ['reserved'], 'stk_requested');
  const current = await deps.db('orders').where({ id: order.id }).first('status');
  if (current.status !== 'stk_requested') return; // pushed already, or settled
  await push(deps, order, finalAttempt);
}

/** Pending pool -> customer transfer. False when the pool cannot cover it (the order is failed and the customer told). */
async function reserve(deps: BuyDeps, order: BuyOrder): Promise<boolean> {
  const relay = await deps.db.transaction(async (trx) => {
    const pool = await accountIdByCode(trx, SYSTEM_ACCOUNTS.pool);
    const customerAccount = await ensureCustomerAccount(trx, order.customer_id);
    try {
      await createPendingTransfer(trx, {
        id: reservationId(order.id),
        debitAccountId: pool,
        creditAccountId: customerAccount,
        amount: order.grams_ug,
        reference: order.reference,
      });
    } catch (err) {
      if (!(err instanceof InsufficientFunds)) throw err;
      deps.log.warn({ orderId: order.id }, 'pool cannot cover the order');
      return failBuyOrder(trx, deps.outbox, order, ['created'], { code: 'pool_empty', description: 'gold pool cannot cover the order', reason: 'poolEmpty' });
    }
    await transitionOrder(trx, order.id, ['created'], 'reserved');
    return [];
  });
  if (relay === null || relay.length > 0) {
    await deps.outbox.relaySoon(relay ?? []);
    return false;
  }
  return true;
}

async function push(deps: BuyDeps, order: BuyOrder, finalAttempt: boolean): Promise<void> {
  const payment = await deps.db('stk_payments').where({ order_id: order.id }).first();
  if (payment.checkout_request_id) {
    // Accepted earlier (the job died after storing the ids): never push again.
    await transitionOrder(deps.db, order.id, ['stk_requested'], 'stk_sent');
    return;
  }
  await deps.db('stk_payments').where({ id: payment.id }).increment('push_attempts', 1);
  try {
    const accepted = await deps.daraja.stkPush({
      msisdn: order.msisdn as Msisdn,
      amountKes: payment.amount_kes,
      accountReference: order.reference,
      description: STK_DESCRIPTION,
    });
    await deps.db.transaction(async (trx) => {
      await trx('stk_payments').where({ id: payment.id }).update({
        merchant_request_id: accepted.merchantRequestId,
        checkout_request_id: accepted.checkoutRequestId,
        accepted_at: trx.fn.now(),
        last_push_error: null,
      });
      await transitionOrder(trx, order.id, ['stk_requested'], 'stk_sent');
    });
    deps.log.info({ orderId: order.id, checkoutRequestId: accepted.checkoutRequestId }, 'stk push accepted');
  } catch (err) {
    const e = err instanceof VendorError ? err : new VendorError('daraja', 'retry', 'unexpected', (err as Error).message);
    await deps.db('stk_payments').where({ id: payment.id }).update({ last_push_error: `${e.code}: ${e.message}`.slice(0, 300) });
    const final = e.kind === 'permanent' || finalAttempt;
    deps.log.warn({ orderId: order.id, code: e.code, kind: e.kind, final }, 'stk push failed');
    if (!final) throw e;
    const relay = await deps.db.transaction((trx) =>
      failBuyOrder(trx, deps.outbox, order, ['stk_requested'], { code: `push_${e.code}`, description: e.message, reason: 'generic' }),
    );
    await deps.outbox.relaySoon(relay ?? []);
  }
}
