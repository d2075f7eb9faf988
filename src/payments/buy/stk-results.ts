import type { Knex } from 'knex';
import { catalogFor } from '../../i18n';
import type { Outbox } from '../../infra/outbox';
import { creditFromPool, postedGold, release, settle, transferIds } from '../../ledger/gold';
import { formatGrams, formatKes, parseKesToCents } from '../../lib/units';
import { raiseOpsAlert } from '../../notifications/ops-alerts';
import { type NewSms, queueSms } from '../../notifications/queue-sms';
import { AWAITING_STK_RESULT, type OrderStatus } from '../../orders/order-states';
import { type Order, transitionOrder } from '../../orders/orders';
import { failBuyOrder, reasonForResultCode } from './buy-outcomes';
import { type Report, type Settlement, type StkOutcome, type StkPayment, callbackColumns, nothing, resultColumns } from './stk-report';
import { merged } from '../../lib/merged';

/**
 * What each M-Pesa answer does to a buy whose order row the caller holds locked: the branches that
 * applyStkReport (settle-stk-payment.ts) chooses between. Each returns the Settlement to report.
 */

export async function pay(trx: Knex.Transaction, outbox: Outbox, order: Order, payment: StkPayment, report: Report, paid: Extract<StkOutcome, { kind: 'paid' }>): Promise<Settlement> {
  // The order and payment rows first: from the post on, the pool account row stays locked until COMMIT and every
  // other reservation and settlement waits for it, so as little as possible runs after the post.
  await trx('stk_payments').where({ id: payment.id }).update(merged(resultColumns(trx, report), { mpesa_receipt: paid.receipt, transaction_date: paid.transactionDate ?? null }));
  await transitionOrder(trx, order.id, AWAITING_STK_RESULT, 'paid');
  const posted = await settle(trx, transferIds.buyReservation(order.id), 'posted');
  let balance: number;
  if (posted.result === 'resolved') balance = posted.creditPosted; // the customer's gold right after the post
  else if (posted.as === 'posted') balance = await postedGold(trx, order.customer_id);
  else {
    // The ledger says the reservation was already released while M-Pesa still had the payment: never
    // expected, never ignored. The customer paid, so they get the gold from a fresh reservation, or,
    // if the pool cannot cover it, the order goes to review with an alert.
    const again = await creditFromPool(trx, { id: transferIds.lateCredit(order.id), customerId: order.customer_id, gramsUg: order.grams_ug, reference: order.reference });
    if (!again.ok) return unallocated(trx, outbox, order, payment, paid, ['paid'], 'paid while its reservation was already released; the pool could not cover the gold');
    balance = again.balanceUg;
  }
  await queueSms(trx, outbox, receiptSms(order, paid.receipt, balance));
  return { outcome: 'settled', alerts: [] };
}

/** The receipt SMS of a paid buy (pay, and its batched twin in settle-stk-batch.ts): `balance` is the customer's gold right after the post. */
export function receiptSms(order: Order, receipt: string | null, balance: number): NewSms {
  const t = catalogFor(order.language);
  const common = { grams: formatGrams(order.grams_ug), kes: formatKes(order.amount_cents), price: formatKes(order.price_cents_per_gram), balance: formatGrams(balance) };
  const body = receipt ? t.sms.buyReceipt(merged(common, { receipt })) : t.sms.buyReceiptNoRef(common);
  return { customerId: order.customer_id, msisdn: order.msisdn, body, purpose: 'buy_receipt', dedupeKey: `buy-receipt-${order.id}` };
}

export async function fail(trx: Knex.Transaction, outbox: Outbox, order: Order, payment: StkPayment, report: Report, failed: Extract<StkOutcome, { kind: 'failed' }>): Promise<Settlement> {
  await trx('stk_payments').where({ id: payment.id }).update(resultColumns(trx, report));
  await failBuyOrder(trx, outbox, order, AWAITING_STK_RESULT, {
    code: `stk_${failed.resultCode}`,
    description: failed.resultDesc,
    reason: reasonForResultCode(failed.resultCode),
  });
  return { outcome: 'failed', alerts: [] };
}

/** No final answer in time: the gold goes back to the pool, the customer is told, an operator can check. */
export async function expire(trx: Knex.Transaction, outbox: Outbox, order: Order, payment: StkPayment, reason: string): Promise<Settlement> {
  if (!(await transitionOrder(trx, order.id, AWAITING_STK_RESULT, 'expired', { failure_code: 'expired', failure_reason: reason.slice(0, 300) }))) return nothing('duplicate');
  await release(trx, transferIds.buyReservation(order.id), 'expired');
  await trx('stk_payments').where({ id: payment.id }).update({ settled_by: 'expiry', settled_at: trx.fn.now() });
  const t = catalogFor(order.language);
  await queueSms(trx, outbox, {
    customerId: order.customer_id,
    msisdn: order.msisdn,
    body: t.sms.buyExpired({ kes: formatKes(order.amount_cents) }),
    purpose: 'buy_expired',
    dedupeKey: `buy-expired-${order.id}`,
  });
  const alert = await raiseOpsAlert(trx, {
    kind: 'payment_unconfirmed',
    severity: 'warn',
    orderId: order.id,
    message: 'reservation expired without a final answer from M-Pesa: check the M-Pesa statement for this order',
    details: { reference: order.reference, checkoutRequestId: payment.checkout_request_id, reason },
    dedupeKey: `payment-unconfirmed-${order.id}`,
  });
  return { outcome: 'expired', alerts: [alert] };
}

/** A success that does not match the order credits nothing: review, for an operator. */
export async function review(trx: Knex.Transaction, order: Order, payment: StkPayment, report: Report, why: string, from: readonly OrderStatus[] = AWAITING_STK_RESULT): Promise<Settlement> {
  // An awaiting order keeps its reservation held for the operator; a failed or expired one has none.
  await trx('stk_payments').where({ id: payment.id }).update(payment.settled_by ? callbackColumns(report) : resultColumns(trx, report));
  await transitionOrder(trx, order.id, from, 'review', { failure_code: 'callback_mismatch', failure_reason: why.slice(0, 300) });
  return { outcome: 'mismatch', alerts: [] };
}

/**
 * The customer paid after we had given up on the order (or M-Pesa said it failed): they get their
 * gold all the same. The first reservation is gone (voided or expired), so a new one is made under its
 * own id and posted at once. If the pool cannot cover it, the order goes to review with an alert and
 * the customer is told a person will sort it out: never paid and forgotten.
 */
export async function latePayment(trx: Knex.Transaction, outbox: Outbox, order: Order, payment: StkPayment, report: Report, paid: Extract<StkOutcome, { kind: 'paid' }>): Promise<Settlement> {
  const from: readonly OrderStatus[] = ['failed', 'expired'];
  const t = catalogFor(order.language);
  await trx('stk_payments').where({ id: payment.id }).update(merged(resultColumns(trx, report), { mpesa_receipt: paid.receipt, transaction_date: paid.transactionDate ?? null }));
  const credited = await creditFromPool(trx, { id: transferIds.lateCredit(order.id), customerId: order.customer_id, gramsUg: order.grams_ug, reference: order.reference });
  if (!credited.ok) return unallocated(trx, outbox, order, payment, paid, from, 'paid after the order closed; the pool could not cover the gold');
  await transitionOrder(trx, order.id, from, 'paid', { failure_code: null, failure_reason: null });
  const balance = credited.balanceUg;
  await queueSms(trx, outbox, {
    customerId: order.customer_id,
    msisdn: order.msisdn,
    body: t.sms.buyLateReceipt({ receipt: paid.receipt ?? order.reference, grams: formatGrams(order.grams_ug), kes: formatKes(order.amount_cents), balance: formatGrams(balance) }),
    purpose: 'buy_receipt',
    dedupeKey: `buy-receipt-${order.id}`,
  });
  return { outcome: 'late_paid', alerts: [] };
}

/**
 * The customer paid and the pool cannot cover their gold: the order waits in review (nothing credited,
 * nothing lost) with an alert, and the customer is told a person will sort it out.
 */
async function unallocated(
  trx: Knex.Transaction,
  outbox: Outbox,
  order: Order,
  payment: StkPayment,
  paid: Extract<StkOutcome, { kind: 'paid' }>,
  from: readonly OrderStatus[],
  why: string,
): Promise<Settlement> {
  await transitionOrder(trx, order.id, from, 'review', { failure_code: 'late_payment_unallocated', failure_reason: why });
  const t = catalogFor(order.language);
  await queueSms(trx, outbox, {
    customerId: order.customer_id,
    msisdn: order.msisdn,
    body: t.sms.buyLateReview({ receipt: paid.receipt ?? order.reference, kes: formatKes(order.amount_cents) }),
    purpose: 'buy_late_review',
    dedupeKey: `buy-late-review-${order.id}`,
  });
  const alert = await raiseOpsAlert(trx, {
    kind: 'late_payment_unallocated',
    severity: 'error',
    orderId: order.id,
    message: `customer paid and the pool cannot cover the gold (${why}): fund the pool and credit, or refund`,
    details: { reference: order.reference, receipt: paid.receipt, amountKes: payment.amount_kes, gramsUg: order.grams_ug, wasStatus: order.status },
    dedupeKey: `late-payment-unallocated-${order.id}`,
  });
  return { outcome: 'late_review', alerts: [alert] };
}

/** A failure callback for a settled order. After an expiry it completes the record; it never undoes a success. */
export async function lateFailure(trx: Knex.Transaction, order: Order, payment: StkPayment, report: Report, failed: Extract<StkOutcome, { kind: 'failed' }>): Promise<Settlement> {
  if (order.status === 'expired' && payment.settled_by === 'expiry') {
    await trx('stk_payments').where({ id: payment.id }).update({ result_code: failed.resultCode, result_desc: failed.resultDesc.slice(0, 300), ...callbackColumns(report) });
    return nothing('late_failure');
  }
  if (order.status === 'paid' && payment.settled_by === 'query') {
    return conflict(trx, order, payment, report, `Query said paid, the callback says ${failed.resultCode} ${failed.resultDesc}`);
  }
  return nothing('duplicate');
}

/**
 * A success for an order an operator refunded or closed: the customer may now hold the refund AND have
 * paid. Nothing is credited (the decision stands); one alert per receipt (or per order for a Query,
 * which has none) tells a person to look at the M-Pesa statement.
 */
export async function paidAfterResolution(trx: Knex.Transaction, order: Order, payment: StkPayment, report: Report, paid: Extract<StkOutcome, { kind: 'paid' }>): Promise<Settlement> {
  if (report.source === 'callback') await trx('stk_payments').where({ id: payment.id }).update(callbackColumns(report));
  const alert = await raiseOpsAlert(trx, {
    kind: 'payment_after_resolution',
    severity: 'error',
    orderId: order.id,
    message: `M-Pesa reports this order paid after an operator ${order.status} it: nothing was credited; check the M-Pesa statement and settle by hand`,
    details: { reference: order.reference, status: order.status, receipt: paid.receipt, source: report.source, checkoutRequestId: payment.checkout_request_id },
    dedupeKey: `payment-after-resolution-${order.id}-${paid.receipt ?? report.source}`,
  });
  return { outcome: 'after_resolution', alerts: [alert] };
}

export async function conflict(trx: Knex.Transaction, order: Order, payment: StkPayment, report: Report, why: string): Promise<Settlement> {
  // A callback's raw body is kept; a Query's answer changes no column (the callback's result stands).
  if (report.source === 'callback') await trx('stk_payments').where({ id: payment.id }).update(callbackColumns(report));
  const alert = await raiseOpsAlert(trx, {
    kind: 'conflicting_results',
    severity: 'error',
    orderId: order.id,
    message: `M-Pesa's callback and STK Query contradict each other on this order (${order.status} stays): ${why}`.slice(0, 500),
    details: { reference: order.reference, checkoutRequestId: payment.checkout_request_id },
    dedupeKey: `conflicting-results-${order.id}`,
  });
  return { outcome: 'conflict', alerts: [alert] };
}

/** A callback's success must carry a fresh receipt, and the amount and phone we asked for. */
export async function callbackMismatch(trx: Knex.Transaction, paid: Extract<StkOutcome, { kind: 'paid' }>, payment: StkPayment): Promise<string | null> {
  const shape = callbackShapeMismatch(paid, payment);
  if (shape) return shape;
  const other = await trx('stk_payments').where({ mpesa_receipt: paid.receipt! }).whereNot({ id: payment.id }).first('id');
  return receiptReuse(paid, other?.id);
}

/** The part of callbackMismatch that needs no database: receipt format, amount, phone (the batch reads the rest in bulk). */
export function callbackShapeMismatch(paid: Extract<StkOutcome, { kind: 'paid' }>, payment: StkPayment): string | null {
  if (!paid.receipt || !/^[A-Z0-9]{6,20}$/.test(paid.receipt)) return 'success without a valid receipt number';
  const cents = paid.amount === undefined ? null : parseKesToCents(paid.amount);
  if (cents !== payment.amount_kes * 100) return `amount ${paid.amount ?? 'missing'} != ${payment.amount_kes}`;
  if (paid.phone !== payment.msisdn) return 'phone number differs from the order';
  return null;
}

/** The receipt is fresh unless another payment (`usedBy`) already holds it. */
export function receiptReuse(paid: Extract<StkOutcome, { kind: 'paid' }>, usedBy: number | undefined): string | null {
  return usedBy !== undefined ? `receipt ${paid.receipt} already used by payment ${usedBy}` : null;
}
