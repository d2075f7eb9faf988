import type { Knex } from 'knex';
import type { Db } from '../db/knex';
import { catalogFor } from '../i18n';
import type { Outbox } from '../jobs/outbox';
import { accountBalance, ensureCustomerAccount, resolvePendingTransfer } from '../ledger/ledger';
import type { Logger } from '../lib/logger';
import { formatGrams, formatKes, parseKesToCents } from '../lib/units';
import { queueSms } from '../notifications/queue-sms';
import type { StkResult } from '../vendors/daraja-callbacks';
import { failBuyOrder, reasonForResultCode } from './buy-outcomes';
import { loadBuyOrder, reservationId, transitionOrder, type BuyOrder } from './orders';

export type CallbackOutcome = 'settled' | 'failed' | 'duplicate' | 'orphan' | 'mismatch';

/** Orders a callback may still settle: the push went out (or was being sent when the answer came). */
const AWAITING_RESULT = ['stk_requested', 'stk_sent'] as const;

/**
 * Applies an STK result exactly once. The order row is locked first, so identical callbacks racing
 * each other queue up behind the first; every later one finds the order settled and changes nothing.
 * Everything (ledger, order, payment, SMS outbox, the raw payload) commits in ONE transaction.
 */
export async function settleStkCallback(
  deps: { db: Db; outbox: Outbox; log: Logger },
  result: StkResult,
  rawPayload: unknown,
): Promise<CallbackOutcome> {
  const { outcome, relay } = await deps.db.transaction(async (trx) => {
    const payment = await trx('stk_payments').where({ checkout_request_id: result.checkoutRequestId }).first();
    const order = payment ? await loadBuyOrder(trx, payment.order_id, { lock: true }) : undefined;
    let decided: { outcome: CallbackOutcome; relay: number[] };
    if (!payment || !order) decided = { outcome: 'orphan', relay: [] };
    else if (!(AWAITING_RESULT as readonly string[]).includes(order.status)) decided = { outcome: 'duplicate', relay: [] };
    else decided = await apply(trx, deps.outbox, order, payment, result, rawPayload);
    await trx('mpesa_callbacks').insert({
      kind: 'stk',
      checkout_request_id: result.checkoutRequestId,
      outcome: decided.outcome,
      payload: JSON.stringify(rawPayload),
    });
    return decided;
  });
  await deps.outbox.relaySoon(relay);
  const level = outcome === 'orphan' || outcome === 'mismatch' ? 'warn' : 'info';
  deps.log[level]({ checkoutRequestId: result.checkoutRequestId, resultCode: result.resultCode, outcome }, 'stk callback');
  return outcome;
}

async function apply(
  trx: Knex.Transaction,
  outbox: Outbox,
  order: BuyOrder,
  payment: { id: number; amount_kes: number; msisdn: string },
  result: StkResult,
  rawPayload: unknown,
): Promise<{ outcome: CallbackOutcome; relay: number[] }> {
  const from = [...AWAITING_RESULT];
  const resultColumns = { result_code: result.resultCode, result_desc: result.resultDesc.slice(0, 300), callback_payload: JSON.stringify(rawPayload), settled_at: trx.fn.now() };

  if (result.resultCode !== 0) {
    await trx('stk_payments').where({ id: payment.id }).update(resultColumns);
    const relay = await failBuyOrder(trx, outbox, order, from, {
      code: `stk_${result.resultCode}`,
      description: result.resultDesc,
      reason: reasonForResultCode(result.resultCode),
    });
    return { outcome: 'failed', relay: relay ?? [] };
  }

  const paid = result.paid;
  const mismatch = checkPaid(paid, payment) ?? (await receiptUsedElsewhere(trx, paid!.receipt!, payment.id));
  if (mismatch) {
    // Credit nothing; the reservation stays held until an operator resolves the review.
    await trx('stk_payments').where({ id: payment.id }).update(resultColumns);
    await transitionOrder(trx, order.id, from, 'review', { failure_code: 'callback_mismatch', failure_reason: mismatch });
    return { outcome: 'mismatch', relay: [] };
  }

  await resolvePendingTransfer(trx, reservationId(order.id), 'posted');
  await trx('stk_payments').where({ id: payment.id }).update({ ...resultColumns, mpesa_receipt: paid!.receipt, transaction_date: paid!.transactionDate ?? null });
  await transitionOrder(trx, order.id, from, 'paid');
  const balance = await accountBalance(trx, await ensureCustomerAccount(trx, order.customer_id));
  const t = catalogFor(order.language);
  const outboxId = await queueSms(trx, outbox, {
    customerId: order.customer_id,
    msisdn: order.msisdn,
    body: t.sms.buyReceipt({
      receipt: paid!.receipt!,
      grams: formatGrams(order.grams_ug),
      kes: formatKes(order.amount_cents),
      price: formatKes(order.price_cents_per_gram),
      balance: formatGrams(balance.posted),
    }),
    purpose: 'buy_receipt',
    dedupeKey: `buy-receipt-${order.id}`,
  });
  return { outcome: 'settled', relay: [outboxId] };
}

/** A success must carry a receipt, and the amount and phone we asked for; anything else is for review. */
function checkPaid(paid: StkResult['paid'], payment: { amount_kes: number; msisdn: string }): string | null {
  if (!paid?.receipt || !/^[A-Z0-9]{6,20}$/.test(paid.receipt)) return 'success without a valid receipt number';
  const cents = paid.amount === undefined ? null : parseKesToCents(paid.amount);
  if (cents !== payment.amount_kes * 100) return `amount ${paid.amount ?? 'missing'} != ${payment.amount_kes}`;
  if (paid.phone !== payment.msisdn) return 'phone number differs from the order';
  return null;
}

async function receiptUsedElsewhere(trx: Knex.Transaction, receipt: string, paymentId: number): Promise<string | null> {
  const other = await trx('stk_payments').where({ mpesa_receipt: receipt }).whereNot({ id: paymentId }).first('id');
  return other ? `receipt ${receipt} already used by payment ${other.id}` : null;
}
