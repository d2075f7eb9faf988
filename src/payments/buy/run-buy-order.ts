import type { Knex } from 'knex';
import type { Db } from '../../db/knex';
import type { Outbox } from '../../infra/outbox';
import { asDarajaError } from '../../vendors/daraja-errors';
import type { Logger } from '../../lib/logger';
import type { Msisdn } from '../../lib/msisdn';
import type { Metrics } from '../../infra/metrics';
import type { DarajaClient } from '../../vendors/daraja-client';
import { failBuyOrder } from './buy-outcomes';
import { loadOrder, transitionOrder, type Order } from '../../orders/orders';
import { pushBatchersFor } from './push-batch';
import { reserveBatcherFor } from './reserve-batch';

export interface BuyDeps {
  db: Db;
  outbox: Outbox;
  daraja: DarajaClient;
  log: Logger;
  metrics?: Metrics;
}

const STK_DESCRIPTION = 'Gold purchase'; // Daraja: at most 13 characters

/**
 * The buy job: reserve the gold, then ask M-Pesa to prompt the payer. Each step moves the order by
 * a conditional update, so a retried or duplicated job resumes where the last one stopped and
 * never reserves twice, nor pushes again once a push may have reached Daraja (accepted, or an
 * outcome we could not see: a timeout, a reset, a process killed mid-call). STK Push has no
 * idempotency key: only an attempt known NOT to have been delivered is retried.
 */
export async function runBuyOrder(deps: BuyDeps, orderId: string, finalAttempt: boolean): Promise<void> {
  // The reservation of every buy job running in this process at the moment goes in one transaction (reserve-batch.ts).
  const reserved = await reserveBatcherFor(deps).submit(orderId);
  if (reserved.outcome === 'unknown_order') {
    deps.log.error({ orderId }, 'buy job for an unknown order');
    return;
  }
  if (reserved.outcome === 'pool_empty') return;
  await push(deps, reserved.order, finalAttempt);
}

async function push(deps: BuyDeps, order: Order, finalAttempt: boolean): Promise<void> {
  // Record before calling: the order is stk_requested before Daraja hears of it. Whether it may be pushed
  // (pushed already, or settled meanwhile) the claim decides, under the order lock (push-batch.ts).
  const batchers = pushBatchersFor(deps);
  const claim = await batchers.claim.submit(order.id);
  if (claim.state !== 'claimed') {
    if (claim.state === 'accepted') await transitionOrder(deps.db, order.id, ['stk_requested'], 'stk_sent');
    if (claim.state === 'in_flight' || claim.state === 'unknown') {
      deps.log.warn({ orderId: order.id, pushOutcome: claim.state }, 'an earlier push may have reached M-Pesa: not pushing again, waiting for its callback');
    }
    return;
  }
  const payment = claim.payment;
  try {
    const accepted = await deps.daraja.stkPush({
      msisdn: order.msisdn as Msisdn,
      amountKes: payment.amount_kes,
      accountReference: order.reference,
      description: STK_DESCRIPTION,
    });
    // Stored whatever became of the order meanwhile: a callback must find its payment by these ids.
    await batchers.record.submit({ orderId: order.id, paymentId: payment.id, merchantRequestId: accepted.merchantRequestId, checkoutRequestId: accepted.checkoutRequestId });
    deps.log.info({ orderId: order.id, checkoutRequestId: accepted.checkoutRequestId }, 'stk push accepted');
    deps.metrics?.inc('mpesa_stk_push_total', { outcome: 'accepted' });
  } catch (err) {
    const e = asDarajaError(err);
    const lastError = `${e.code}: ${e.message}`.slice(0, 300);
    // This attempt's outcome, written only while the payment still shows it in flight: a callback matched by phone
    // and amount may have taken the payment meanwhile (accepted, with its ids), and that stands.
    const recordOutcome = (q: Knex, outcome: 'unknown' | 'not_delivered') =>
      q('stk_payments').where({ id: payment.id, push_outcome: 'in_flight' }).whereNull('checkout_request_id').update({ push_outcome: outcome, last_push_error: lastError });
    if (e.maybeProcessed) {
      await recordOutcome(deps.db, 'unknown');
      deps.metrics?.inc('mpesa_stk_push_total', { outcome: 'unknown' });
      // Daraja may have taken it: a second push could prompt (and charge) the customer twice. Its
      // callback is matched by phone, amount and time; without one, reconciliation expires the order.
      deps.log.warn({ orderId: order.id, code: e.code }, 'stk push outcome unknown: waiting for the callback instead of pushing again');
      return;
    }
    const final = e.kind === 'permanent' || finalAttempt;
    deps.log.warn({ orderId: order.id, code: e.code, kind: e.kind, final }, 'stk push failed');
    deps.metrics?.inc('mpesa_stk_push_total', { outcome: final ? 'failed' : 'retry' });
    if (!final) {
      // Known not delivered: this job's retry, or another copy of it, may push again.
      await recordOutcome(deps.db, 'not_delivered');
      throw e;
    }
    // The last attempt: "not delivered" and the failed order are ONE commit under the order lock. Recorded apart,
    // "not delivered" would let another copy of this job claim and push in between, and the failure would then
    // release the reservation of an order whose second push may be paid (a claim needs this lock and a
    // not_delivered attempt; this payment stays in_flight, ours, until the order has left stk_requested).
    await deps.outbox.transaction(async (trx) => {
      const locked = await loadOrder(trx, order.id, { lock: true });
      if ((await recordOutcome(trx, 'not_delivered')) !== 1 || !locked) return;
      await failBuyOrder(trx, deps.outbox, locked, ['stk_requested'], { code: `push_${e.code}`, description: e.message, reason: 'generic' });
    });
  }
}
