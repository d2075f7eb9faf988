import type { Knex } from 'knex';
import type { Outbox } from '../../infra/outbox';
import type { Logger } from '../../lib/logger';
import { raiseOpsAlert } from '../../notifications/ops-alerts';
import { AWAITING_PAYOUT, type OrderStatus } from '../../orders/order-states';
import { lockOrderOf } from '../../orders/orders';
import { type Payout, loadPayout } from './payouts';
import { type PayoutResultColumns, completeSellOrder, failSellOrder, holdSellOrderForReview, sellReasonForResultCode } from './sell-outcomes';

/**
 * What M-Pesa says became of a payout, and the one rule that applies it: every B2C Result and every
 * Transaction Status answer ends in settlePayoutOutcome, so the two can race without paying or
 * returning gold twice. The adapters from each callback's shape are in settle-payout.ts.
 */

export type PayoutCallbackOutcome =
  | 'settled'
  | 'failed'
  | 'mismatch'
  | 'duplicate'
  /** A success for a sale we had already failed (gold returned): M-Pesa contradicts itself; an operator must look. */
  | 'conflict'
  | 'orphan'
  /** Queue timeout: a Transaction Status check was scheduled. */
  | 'status_check'
  /** A status answer that decides nothing (not found yet, query refused): the next scheduled check asks again. */
  | 'undecided';

/**
 * What M-Pesa says became of a payout, from a B2C Result or a Transaction Status Result alike: both
 * settle through settlePayoutOutcome, so the two can race without paying or returning gold twice.
 */
export type PayoutVerdict =
  | { kind: 'success'; payoutId: string; conversationId: string | null; receipt: string | undefined; amountKes: number | undefined; amountText: string | undefined; receiverName: string | null; completedAt: Date | null; result: PayoutResultColumns }
  | { kind: 'failure'; payoutId: string; result: PayoutResultColumns };

/**
 * Applies a verdict exactly once. The order row is locked first, so racing callbacks (a Result and a
 * status answer, or five copies of one Result) queue behind each other; every later one finds the
 * order settled and changes nothing.
 */
export async function settlePayoutOutcome(trx: Knex.Transaction, deps: { outbox: Outbox; log: Logger }, v: PayoutVerdict): Promise<{ outcome: PayoutCallbackOutcome }> {
  // The order locked first, the payout read once under that lock: what another callback did before
  // we got the lock counts.
  const order = await lockOrderOf(trx, 'payouts', { id: v.payoutId });
  const payout = order ? await loadPayout(trx, v.payoutId) : undefined;
  if (!order || !payout) return { outcome: 'orphan' };
  // A sale held only because no answer came in time still takes M-Pesa's later, definitive answer;
  // one held over a mismatch waits for a person.
  const from: readonly OrderStatus[] = order.status === 'review' && order.failure_code === 'payout_unconfirmed' ? ['review'] : AWAITING_PAYOUT;
  if (!from.includes(order.status)) {
    // `closed`: an operator decided the payout did not go out (not_paid) and the seller kept the gold.
    // That decision is final: a later "paid" moves nothing, it asks a person to recover one of the two.
    if (v.kind === 'success' && (order.status === 'failed' || order.status === 'closed')) {
      const after = order.status === 'closed' ? 'an operator closed it as not paid' : 'it was failed';
      deps.log.error({ orderId: order.id, payoutId: payout.id, receipt: v.receipt, status: order.status }, `payout reported paid after ${after} and the gold returned`);
      // The customer has both the money and the gold: a person must recover one of them.
      await raiseOpsAlert(trx, {
        kind: 'payout_paid_after_failure',
        severity: 'error',
        orderId: order.id,
        message: `M-Pesa paid a sale after ${after} and the gold returned`,
        details: { payoutId: payout.id, receipt: v.receipt ?? null, status: order.status },
        dedupeKey: `payout-paid-after-failure-${payout.id}`,
      });
      return { outcome: 'conflict' };
    }
    // `paid` (by M-Pesa's own success, or an operator's paid_out after checking the statement) is final
    // too: a later failure moves nothing, but the seller may have neither the gold nor the money.
    if (v.kind === 'failure' && order.status === 'paid') {
      const byOperator = await trx('order_resolutions').where({ order_id: order.id, action: 'paid_out' }).first('operator');
      const decided = byOperator ? `an operator (${byOperator.operator}) marked it paid out` : 'M-Pesa reported it paid';
      // The operator's name stays in the alert (the audit), out of the log.
      deps.log.error({ orderId: order.id, payoutId: payout.id, resultCode: v.result.result_code, decidedBy: byOperator ? 'operator' : 'mpesa' }, 'payout reported failed after the sale was paid');
      await raiseOpsAlert(trx, {
        kind: 'payout_failed_after_paid',
        severity: 'error',
        orderId: order.id,
        message: `M-Pesa reports a sale's payout failed (${v.result.result_code}) after ${decided}: check the M-Pesa statement; if the money never left, pay the seller or give the gold back by hand`,
        details: { payoutId: payout.id, resultCode: v.result.result_code, resultDesc: v.result.result_desc, decidedBy: byOperator ? 'operator' : 'mpesa' },
        dedupeKey: `payout-failed-after-paid-${payout.id}`,
      });
      return { outcome: 'conflict' };
    }
    return { outcome: 'duplicate' };
  }

  if (v.kind === 'failure') {
    const failed = await failSellOrder(trx, deps.outbox, order, payout, from, {
      code: `b2c_${v.result.result_code}`,
      description: v.result.result_desc,
      reason: sellReasonForResultCode(v.result.result_code),
      result: v.result,
    });
    if (failed && order.status === 'review') await closeUnconfirmedAlert(trx, order.id, 'failed');
    return { outcome: 'failed' };
  }

  const problem = await successProblem(trx, payout, v);
  if (problem) {
    // Nothing is posted: the gold stays reserved until an operator compares with M-Pesa's statement.
    await holdSellOrderForReview(trx, order, payout, from, { code: 'payout_mismatch', description: problem, result: v.result });
    deps.log.warn({ orderId: order.id, payoutId: payout.id, problem }, 'payout result held for review');
    return { outcome: 'mismatch' };
  }
  const done = await completeSellOrder(trx, deps.outbox, order, payout, from, {
    receipt: v.receipt!,
    receiverName: v.receiverName,
    completedAt: v.completedAt,
    conversationId: v.conversationId,
    result: v.result,
  });
  if (done && !done.paid) {
    deps.log.error({ orderId: order.id, payoutId: payout.id, receipt: v.receipt }, done.alert.message);
    return { outcome: 'conflict' };
  }
  if (done && order.status === 'review') await closeUnconfirmedAlert(trx, order.id, 'paid');
  return { outcome: done ? 'settled' : 'duplicate' };
}

/** M-Pesa's answer settled a sale held for want of one: the alert that asked a person to look is answered. */
async function closeUnconfirmedAlert(trx: Knex.Transaction, orderId: string, how: 'paid' | 'failed'): Promise<void> {
  await trx('ops_alerts')
    .where({ order_id: orderId, kind: 'payout_unconfirmed' })
    .whereNull('resolved_at')
    .update({ resolved_at: trx.fn.now(), resolution: `settled by M-Pesa's answer (${how})` });
}

/** A success must carry a fresh receipt and exactly the amount we asked for. */
async function successProblem(trx: Knex.Transaction, payout: Payout, v: Extract<PayoutVerdict, { kind: 'success' }>): Promise<string | null> {
  if (!v.receipt || !/^[A-Z0-9]{6,20}$/.test(v.receipt)) return 'success without a valid receipt number';
  if (v.amountKes !== payout.amount_kes) return `amount ${v.amountText ?? 'missing'} != ${payout.amount_kes}`;
  const other = await trx('payouts').where({ transaction_id: v.receipt }).whereNot({ id: payout.id }).first('id');
  if (other) return `receipt ${v.receipt} already used by payout ${other.id}`;
  return null;
}
