import type { Knex } from 'knex';
import type { Db } from '../../db/knex';
import { catalogFor } from '../../i18n';
import type { Outbox } from '../../infra/outbox';
import { creditFromPool, postedGold, release, settle, transferIds } from '../../ledger/gold';
import type { Logger } from '../../lib/logger';
import { formatGrams, formatKes, parseKesToCents } from '../../lib/units';
import { logOpsAlerts, raiseOpsAlert, type OpsAlert } from '../../notifications/ops-alerts';
import { queueSms } from '../../notifications/queue-sms';
import { failBuyOrder, reasonForResultCode } from './buy-outcomes';
import { loadOrder, transitionOrder, type Order } from '../../orders/orders';
import { AWAITING_STK_RESULT, type OrderStatus } from '../../orders/order-states';

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

export type SettledBy = 'callback' | 'query' | 'expiry';
export type MatchedBy = 'checkout_id' | 'phone_amount_window';

/** What was reported. A Query's success has no receipt, amount or phone: they are the callback's. */
export type StkOutcome =
  | { kind: 'paid'; resultDesc: string; receipt: string | null; amount?: string | undefined; phone?: string | undefined; transactionDate?: string | undefined }
  | { kind: 'failed'; resultCode: number; resultDesc: string }
  | { kind: 'expired'; reason: string };

export type SettlementOutcome =
  | 'settled' // paid, now
  | 'failed'
  | 'expired'
  | 'mismatch' // a success that does not match the order: review, nothing credited
  | 'late_paid' // a success after the order failed or expired: gold re-reserved and credited
  | 'late_review' // the same, but the pool could not cover it: review, alert, SMS
  | 'late_failure' // a failure after expiry: recorded, nothing else changes
  | 'receipt_added' // the callback after a Query settled the payment: its receipt is stored
  | 'conflict' // the callback contradicts the Query answer that settled the order (or a Query the callback): alert
  | 'after_resolution' // a success for an order an operator refunded or closed: alert, nothing credited
  | 'duplicate'
  | 'orphan'
  | 'ambiguous';

export interface StkPayment {
  id: number;
  order_id: string;
  msisdn: string;
  amount_kes: number;
  checkout_request_id: string | null;
  mpesa_receipt: string | null;
  settled_by: SettledBy | null;
}

export interface Settlement {
  outcome: SettlementOutcome;
  /** Logged after commit (the SMS rows are relayed by outbox.transaction). */
  alerts: OpsAlert[];
}

export interface StkSettleDeps {
  db: Db;
  outbox: Outbox;
  log: Logger;
}

export interface Report {
  source: SettledBy;
  outcome: StkOutcome;
  /** Callbacks only: how the callback was tied to this payment, and its raw body. */
  matchedBy?: MatchedBy;
  rawPayload?: unknown;
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
    await trx('stk_payments').where({ id: payment.id }).update({ ...callbackColumns(report), mpesa_receipt: outcome.receipt, transaction_date: outcome.transactionDate ?? null });
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
    const payment = await trx('stk_payments').where({ id: paymentId }).first();
    const order = payment ? await loadOrder(trx, payment.order_id, { lock: true }) : undefined;
    if (!payment || !order) return { outcome: 'orphan' as const, alerts: [] };
    // Re-read under the order lock: a callback may have settled it while we asked.
    const fresh = await trx('stk_payments').where({ id: paymentId }).first();
    return applyStkReport(trx, deps.outbox, order, fresh, report);
  });
  finish(deps, settlement);
  return settlement.outcome;
}

/** After commit: log the alerts (outbox.transaction has relayed the SMS jobs). */
export function finish(deps: StkSettleDeps, settlement: Settlement): void {
  logOpsAlerts(deps.log, settlement.alerts);
}

const nothing = (outcome: SettlementOutcome): Settlement => ({ outcome, alerts: [] });

function resultColumns(trx: Knex.Transaction, report: Report) {
  const o = report.outcome;
  return {
    ...(o.kind === 'failed' ? { result_code: o.resultCode, result_desc: o.resultDesc.slice(0, 300) } : {}),
    ...(o.kind === 'paid' ? { result_code: 0, result_desc: o.resultDesc.slice(0, 300) } : {}),
    ...callbackColumns(report),
    settled_by: report.source,
    settled_at: trx.fn.now(),
  };
}

function callbackColumns(report: Report) {
  if (report.source !== 'callback') return {};
  return { callback_payload: JSON.stringify(report.rawPayload ?? null), matched_by: report.matchedBy ?? 'checkout_id' };
}

async function pay(trx: Knex.Transaction, outbox: Outbox, order: Order, payment: StkPayment, report: Report, paid: Extract<StkOutcome, { kind: 'paid' }>): Promise<Settlement> {
  // The order and payment rows first: from the post on, the pool account row stays locked until COMMIT and every
  // other reservation and settlement waits for it, so as little as possible runs after the post.
  await trx('stk_payments').where({ id: payment.id }).update({ ...resultColumns(trx, report), mpesa_receipt: paid.receipt, transaction_date: paid.transactionDate ?? null });
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
  const t = catalogFor(order.language);
  const common = { grams: formatGrams(order.grams_ug), kes: formatKes(order.amount_cents), price: formatKes(order.price_cents_per_gram), balance: formatGrams(balance) };
  const body = paid.receipt ? t.sms.buyReceipt({ ...common, receipt: paid.receipt }) : t.sms.buyReceiptNoRef(common);
  await queueSms(trx, outbox, { customerId: order.customer_id, msisdn: order.msisdn, body, purpose: 'buy_receipt', dedupeKey: `buy-receipt-${order.id}` });
  return { outcome: 'settled', alerts: [] };
}

async function fail(trx: Knex.Transaction, outbox: Outbox, order: Order, payment: StkPayment, report: Report, failed: Extract<StkOutcome, { kind: 'failed' }>): Promise<Settlement> {
  await trx('stk_payments').where({ id: payment.id }).update(resultColumns(trx, report));
  await failBuyOrder(trx, outbox, order, AWAITING_STK_RESULT, {
    code: `stk_${failed.resultCode}`,
    description: failed.resultDesc,
    reason: reasonForResultCode(failed.resultCode),
  });
  return { outcome: 'failed', alerts: [] };
}

/** No final answer in time: the gold goes back to the pool, the customer is told, an operator can check. */
async function expire(trx: Knex.Transaction, outbox: Outbox, order: Order, payment: StkPayment, reason: string): Promise<Settlement> {
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
async function review(trx: Knex.Transaction, order: Order, payment: StkPayment, report: Report, why: string, from: readonly OrderStatus[] = AWAITING_STK_RESULT): Promise<Settlement> {
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
async function latePayment(trx: Knex.Transaction, outbox: Outbox, order: Order, payment: StkPayment, report: Report, paid: Extract<StkOutcome, { kind: 'paid' }>): Promise<Settlement> {
  const from: readonly OrderStatus[] = ['failed', 'expired'];
  const t = catalogFor(order.language);
  await trx('stk_payments').where({ id: payment.id }).update({ ...resultColumns(trx, report), mpesa_receipt: paid.receipt, transaction_date: paid.transactionDate ?? null });
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
async function lateFailure(trx: Knex.Transaction, order: Order, payment: StkPayment, report: Report, failed: Extract<StkOutcome, { kind: 'failed' }>): Promise<Settlement> {
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
async function paidAfterResolution(trx: Knex.Transaction, order: Order, payment: StkPayment, report: Report, paid: Extract<StkOutcome, { kind: 'paid' }>): Promise<Settlement> {
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

async function conflict(trx: Knex.Transaction, order: Order, payment: StkPayment, report: Report, why: string): Promise<Settlement> {
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
async function callbackMismatch(trx: Knex.Transaction, paid: Extract<StkOutcome, { kind: 'paid' }>, payment: StkPayment): Promise<string | null> {
  if (!paid.receipt || !/^[A-Z0-9]{6,20}$/.test(paid.receipt)) return 'success without a valid receipt number';
  const cents = paid.amount === undefined ? null : parseKesToCents(paid.amount);
  if (cents !== payment.amount_kes * 100) return `amount ${paid.amount ?? 'missing'} != ${payment.amount_kes}`;
  if (paid.phone !== payment.msisdn) return 'phone number differs from the order';
  const other = await trx('stk_payments').where({ mpesa_receipt: paid.receipt }).whereNot({ id: payment.id }).first('id');
  return other ? `receipt ${paid.receipt} already used by payment ${other.id}` : null;
}
