import type { Knex } from 'knex';
import { catalogFor } from '../../i18n';
import type { Outbox } from '../../infra/outbox';
import { postedGold, reservationState, settle, transferIds } from '../../ledger/gold';
import { formatGrams, formatKes } from '../../lib/units';
import { raiseOpsAlert, type OpsAlert } from '../../notifications/ops-alerts';
import { queueSms } from '../../notifications/queue-sms';
import { transitionOrder, type Order } from '../../orders/orders';
import { type OrderStatus } from '../../orders/order-states';
import type { Payout } from './payouts';

export type SellFailureReason = 'recipient' | 'unavailable' | 'generic';

/** B2C results that say the money cannot reach this customer's line. */
const RECIPIENT_CODES = new Set(['2040', 'SFC_IC0003', '8']);
/** B2C results that are ours to fix (initiator, credential, utility balance, limits): the customer can only wait. */
const OUR_SIDE_CODES = new Set(['1', '4', '11', '21', '2001', '8006']);

export function sellReasonForResultCode(code: string): SellFailureReason {
  if (RECIPIENT_CODES.has(code)) return 'recipient';
  if (OUR_SIDE_CODES.has(code)) return 'unavailable';
  return 'generic';
}

/** What M-Pesa said about a payout: the result columns stored on the payout row. */
export interface PayoutResultColumns {
  result_code: string;
  result_desc: string;
  result_payload: unknown;
}

/**
 * Closes a sale as failed in the caller's transaction: the gold goes back to the customer (the pending
 * transfer is voided), the order and the payout record why, and the customer's SMS is queued.
 * False when the order had already left `from` (the SMS is relayed after commit by outbox.transaction).
 */
export async function failSellOrder(
  trx: Knex.Transaction,
  outbox: Outbox,
  order: Order,
  payout: Payout,
  from: readonly OrderStatus[],
  failure: { code: string; description: string; reason: SellFailureReason; result?: PayoutResultColumns },
): Promise<boolean> {
  // Gold already POSTED to the pool: telling the seller the sale failed would take it from them. The
  // sale is held for a person instead (nothing moves); voided or expired is the gold back either way.
  if ((await reservationState(trx, transferIds.sale(order.id))) === 'posted') {
    if (!(await holdSellOrderForReview(trx, order, payout, from, { code: 'payout_ledger_conflict', description: `M-Pesa reports the payout failed (${failure.code}) but the sale's gold was already posted to the pool`, ...(failure.result ? { result: failure.result } : {}) }))) return false;
    await raiseOpsAlert(trx, {
      kind: 'payout_ledger_conflict',
      severity: 'error',
      orderId: order.id,
      message: "M-Pesa reports a sale's payout failed, but its gold was already posted to the pool: check the M-Pesa statement, then resolve the order (paid_out if the money left)",
      details: { payoutId: payout.id, failure: failure.code, transfer: 'posted' },
      dedupeKey: `payout-ledger-conflict-${payout.id}`,
    });
    return false;
  }
  const moved = await transitionOrder(trx, order.id, from, 'failed', { failure_code: failure.code.slice(0, 100), failure_reason: failure.description.slice(0, 300) });
  if (!moved) return false;
  // Checked just above under the order lock: the hold is pending, or already voided/expired (gold back either way).
  await settle(trx, transferIds.sale(order.id), 'voided');
  await trx('payouts')
    .where({ id: payout.id })
    .update({
      status: 'failed',
      ...(failure.result ? { ...failure.result, result_payload: JSON.stringify(failure.result.result_payload) } : {}),
      settled_at: trx.fn.now(),
      updated_at: trx.fn.now(),
    });
  const t = catalogFor(order.language);
  await queueSms(trx, outbox, {
    customerId: order.customer_id,
    msisdn: order.msisdn,
    body: t.sms.sellFailed({ kes: formatKes(order.amount_cents), grams: formatGrams(order.grams_ug), reason: t.sms.sellReasons[failure.reason] }),
    purpose: 'sell_failed',
    dedupeKey: `sell-failed-${order.id}`,
  });
  return true;
}

/**
 * Completes a sale in the caller's transaction: the gold moves to the pool for good (the pending
 * transfer is posted), M-Pesa's receipt, receiver name and completion time are stored, and the
 * receipt SMS is queued. Null when the order had already left `from`.
 *
 * The ledger's answer is never ignored. The transfer id is this order's own (sell-<orderId>), so
 * `already_resolved` as posted is this very sale's gold already moved: the sale is still paid. Voided
 * or expired means the gold went back to the seller while M-Pesa paid: the seller has both, so the
 * order is NOT marked paid; it goes to review with a `payout_ledger_conflict` alert for a person.
 */
export async function completeSellOrder(
  trx: Knex.Transaction,
  outbox: Outbox,
  order: Order,
  payout: Payout,
  from: readonly OrderStatus[],
  paid: { receipt: string; receiverName: string | null; completedAt: Date | null; conversationId: string | null; result: PayoutResultColumns },
): Promise<{ paid: true } | { paid: false; alert: OpsAlert } | null> {
  // Read under the order lock (the caller holds it already; taking it again is a no-op) before any gold moves.
  const current = await trx('orders').where({ id: order.id }).forUpdate().first('status');
  if (!current || !from.includes(current.status)) return null;
  const posted = await settle(trx, transferIds.sale(order.id), 'posted');
  if (posted.result === 'already_resolved' && posted.as !== 'posted') {
    const why = `M-Pesa paid (receipt ${paid.receipt}) but the sale's gold was already ${posted.as} back to the seller`;
    await holdSellOrderForReview(trx, order, payout, from, { code: 'payout_ledger_conflict', description: why, result: paid.result });
    const alert = await raiseOpsAlert(trx, {
      kind: 'payout_ledger_conflict',
      severity: 'error',
      orderId: order.id,
      message: 'M-Pesa paid a sale whose gold had already gone back to the seller: recover the gold or the money, then resolve the order',
      details: { payoutId: payout.id, receipt: paid.receipt, transfer: posted.as },
      dedupeKey: `payout-ledger-conflict-${payout.id}`,
    });
    return { paid: false, alert };
  }
  if (!(await transitionOrder(trx, order.id, from, 'paid'))) throw new Error(`sell order ${order.id} left ${from.join('/')} while locked`);
  await trx('payouts')
    .where({ id: payout.id })
    .update({
      status: 'paid',
      transaction_id: paid.receipt,
      receiver_name: paid.receiverName?.slice(0, 200) ?? null,
      completed_at: paid.completedAt,
      ...paid.result,
      result_payload: JSON.stringify(paid.result.result_payload),
      settled_at: trx.fn.now(),
      updated_at: trx.fn.now(),
    });
  // The ConversationID, when the acceptance was a "duplicate" answer that carried none.
  if (paid.conversationId && !payout.conversation_id) {
    const taken = await trx('payouts').where({ conversation_id: paid.conversationId }).first('id');
    if (!taken) await trx('payouts').where({ id: payout.id }).whereNull('conversation_id').update({ conversation_id: paid.conversationId });
  }
  const balance = await postedGold(trx, order.customer_id);
  const t = catalogFor(order.language);
  await queueSms(trx, outbox, {
    customerId: order.customer_id,
    msisdn: order.msisdn,
    body: t.sms.sellReceipt({
      receipt: paid.receipt,
      grams: formatGrams(order.grams_ug),
      kes: formatKes(order.amount_cents),
      price: formatKes(order.price_cents_per_gram),
      balance: formatGrams(balance),
    }),
    purpose: 'sell_receipt',
    dedupeKey: `sell-receipt-${order.id}`,
  });
  return { paid: true };
}

/** Holds a sale for an operator: nothing moves, the gold stays reserved. */
export async function holdSellOrderForReview(
  trx: Knex.Transaction,
  order: Order,
  payout: Payout,
  from: readonly OrderStatus[],
  why: { code: string; description: string; result?: PayoutResultColumns },
): Promise<boolean> {
  const moved = await transitionOrder(trx, order.id, from, 'review', { failure_code: why.code, failure_reason: why.description.slice(0, 300) });
  if (!moved) return false;
  await trx('payouts')
    .where({ id: payout.id })
    .update({
      status: 'review',
      last_error: why.description.slice(0, 300),
      ...(why.result ? { ...why.result, result_payload: JSON.stringify(why.result.result_payload) } : {}),
      updated_at: trx.fn.now(),
    });
  return true;
}

/**
 * Holds a sale whose payout nobody could confirm (no Result, no timeout, no decisive status answer
 * after every check) for an operator, with a `payout_unconfirmed` alert: the gold stays reserved, since
 * a B2C payment cannot be taken back and returning the gold could pay for gold we never took. A later
 * decisive answer from M-Pesa still settles it (src/payments/settle-payout.ts); otherwise an operator
 * resolves it (paid_out / not_paid). Returns the alert, or null when the order had already left `from`.
 */
export async function holdUnconfirmedPayout(trx: Knex.Transaction, order: Order, payout: Payout, from: readonly OrderStatus[], description: string): Promise<OpsAlert | null> {
  if (!(await holdSellOrderForReview(trx, order, payout, from, { code: 'payout_unconfirmed', description }))) return null;
  return raiseOpsAlert(trx, {
    kind: 'payout_unconfirmed',
    severity: 'error',
    orderId: order.id,
    message: 'No confirmation of a payout after every Transaction Status check: check the M-Pesa statement, then resolve the sale (paid_out or not_paid)',
    details: { payoutId: payout.id, reference: order.reference },
    dedupeKey: `payout-unconfirmed-${payout.id}`,
  });
}
