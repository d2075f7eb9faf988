import type { Knex } from 'knex';
import type { Db } from '../../db/knex';
import type { Outbox } from '../../infra/outbox';
import type { Logger } from '../../lib/logger';
import { logOpsAlerts } from '../../notifications/ops-alerts';
import { AWAITING_STK_RESULT } from '../../orders/order-states';
import { type Order, lockOrderOf } from '../../orders/orders';
import { type Report, type Settlement, type SettlementOutcome, type StkPayment, callbackColumns, nothing } from './stk-report';
import { callbackMismatch, conflict, expire, fail, lateFailure, latePayment, paidAfterResolution, pay, review } from './stk-results';
import { merged } from '../../lib/merged';

/**
 * ONE place decides what an STK result does to an order, whoever reports it: Safaricom's callback,
 * our STK Query (reconciliation) or the clock (expiry). The rules that keep money exact:
 *  - the order row is locked by the caller, so concurrent reporters queue up and every later one
 *    finds the order settled;
 *  - an order awaiting its result is settled by the first final answer, and `settled_by` records who
 *    gave it;
 *  - after that, only a callback changes anything, and only in the customer's favour: a success
 *    callback for a failed or expired order still wins (the customer paid, so they get gold), and a
 *    callback adds the receipt number a Query answer could not give. A Query answer never overwrites
 *    anything, and a failure never undoes a success (it raises an alert instead).
 */

export interface StkSettleDeps {
  db: Db;
  outbox: Outbox;
  log: Logger;
}

/** Applies a report to a payment whose order the caller has LOCKED, in the caller's transaction. */
export async function applyStkReport(trx: Knex.Transaction, outbox: Outbox, order: Order, payment: StkPayment, report: Report): Promise<Settlement> {
  const awaiting = AWAITING_STK_RESULT.includes(order.status);
  const { source, outcome } = report;
  if (awaiting) {
    if (outcome.kind === 'expired') return expire(trx, outbox, order, payment, outcome.reason);
    if (outcome.kind === 'failed') return fail(trx, outbox, order, payment, report, outcome);
    const mismatch = source === 'callback' ? await callbackMismatch(trx, outcome, payment) : null;
    if (mismatch) return review(trx, order, payment, report, mismatch);
    return pay(trx, outbox, order, payment, report, outcome);
  }
  // An operator's decision is final: a later success credits nothing; a person looks at it, once per receipt.
  if (order.status === 'refunded' || order.status === 'closed') {
    return outcome.kind === 'paid' ? paidAfterResolution(trx, order, payment, report, outcome) : nothing('duplicate');
  }
  // A Query that says "paid" after a callback said the payment failed: both cannot be true.
  if (source === 'query' && outcome.kind === 'paid' && order.status === 'failed' && payment.settled_by === 'callback') {
    return conflict(trx, order, payment, report, `the callback said the payment failed, a later STK Query says it was paid`);
  }
  // The order is settled. Only a callback may still change something.
  if (source !== 'callback') return nothing('duplicate');
  if (outcome.kind === 'failed') return lateFailure(trx, order, payment, report, outcome);
  if (outcome.kind !== 'paid') return nothing('duplicate');
  const mismatch = await callbackMismatch(trx, outcome, payment);
  if (order.status === 'paid') {
    if (payment.settled_by !== 'query' || payment.mpesa_receipt) return nothing('duplicate');
    if (mismatch) return conflict(trx, order, payment, report, `the callback after a Query success does not match: ${mismatch}`);
    await trx('stk_payments').where({ id: payment.id }).update(merged(callbackColumns(report), { mpesa_receipt: outcome.receipt, transaction_date: outcome.transactionDate ?? null }));
    return nothing('receipt_added');
  }
  if (order.status === 'failed' || order.status === 'expired') {
    if (mismatch) return review(trx, order, payment, report, mismatch, [order.status]);
    return latePayment(trx, outbox, order, payment, report, outcome);
  }
  return nothing('duplicate'); // review: an operator owns it now
}

/**
 * For reporters that know the payment (Query, expiry): locks the order, applies the report, commits
 * (outbox.transaction relays the SMS), and logs. Returns what happened.
 */
export async function settleStkPayment(deps: StkSettleDeps, paymentId: number, report: Report): Promise<SettlementOutcome> {
  const settlement = await deps.outbox.transaction(async (trx) => {
    // Read under the order lock: a callback that settled it while we asked shows.
    const order = await lockOrderOf(trx, 'stk_payments', { id: paymentId });
    const payment = order ? await trx('stk_payments').where({ id: paymentId }).first() : undefined;
    if (!payment || !order) return { outcome: 'orphan' as const, alerts: [] };
    return applyStkReport(trx, deps.outbox, order, payment, report);
  });
  finish(deps, settlement);
  return settlement.outcome;
}

/** After commit: log the alerts (outbox.transaction has relayed the SMS jobs). */
export function finish(deps: StkSettleDeps, settlement: Settlement): void {
  logOpsAlerts(deps.log, settlement.alerts);
}
