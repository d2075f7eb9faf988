import type { Knex } from 'knex';
import type { Config } from '../../config';
import type { Db } from '../../db/knex';
import type { Outbox } from '../../infra/outbox';
import type { Logger } from '../../lib/logger';
import type { Metrics } from '../../infra/metrics';
import { parseKesToCents } from '../../lib/units';
import { raiseOpsAlert } from '../../notifications/ops-alerts';
import type { StkResult } from '../../vendors/daraja-callbacks';
import { loadOrder, lockOrderOf } from '../../orders/orders';
import { applyStkReport, finish } from './settle-stk-payment';
import type { MatchedBy, Settlement, SettlementOutcome, StkOutcome, StkPayment } from './stk-report';

export type CallbackOutcome = SettlementOutcome;

export interface CallbackDeps {
  db: Db;
  outbox: Outbox;
  log: Logger;
  config: Pick<Config, 'reconcile'>;
  metrics?: Metrics;
}

/**
 * Applies an STK callback exactly once (the rules are in settle-stk-payment.ts). The payment is found
 * by its CheckoutRequestID; a success whose CheckoutRequestID we never stored (the process died, or the
 * network failed, between Daraja accepting the push and us saving its answer) is matched by phone,
 * amount and time window instead. Everything, including the raw callback, commits in ONE transaction.
 */
export async function settleStkCallback(deps: CallbackDeps, result: StkResult, rawPayload: unknown): Promise<CallbackOutcome> {
  const outcome = toOutcome(result);
  const settlement = await deps.outbox.transaction(async (trx) => {
    const decided = await settle(trx, deps, result, outcome, rawPayload);
    await trx('mpesa_callbacks').insert({
      kind: 'stk',
      checkout_request_id: result.checkoutRequestId,
      outcome: decided.outcome,
      payload: JSON.stringify(rawPayload),
    });
    return decided;
  });
  reportCallback(deps, result, settlement);
  return settlement.outcome;
}

/** After COMMIT, once per callback (one by one or batched): alerts logged, metrics counted, one log line. */
export function reportCallback(deps: CallbackDeps, result: StkResult, settlement: Settlement): void {
  finish(deps, settlement);
  deps.metrics?.inc('mpesa_callbacks_total', { outcome: settlement.outcome });
  if (settlement.outcome !== 'duplicate') deps.metrics?.inc('mpesa_stk_results_total', { result_code: result.resultCode });
  const level = ['orphan', 'ambiguous', 'mismatch', 'conflict', 'late_review'].includes(settlement.outcome) ? 'warn' : 'info';
  deps.log[level]({ checkoutRequestId: result.checkoutRequestId, resultCode: result.resultCode, outcome: settlement.outcome }, 'stk callback');
}

export function toOutcome(result: StkResult): StkOutcome {
  if (result.resultCode !== 0) return { kind: 'failed', resultCode: result.resultCode, resultDesc: result.resultDesc };
  return { kind: 'paid', resultDesc: result.resultDesc, receipt: result.paid?.receipt ?? null, amount: result.paid?.amount, phone: result.paid?.phone, transactionDate: result.paid?.transactionDate };
}

async function settle(trx: Knex.Transaction, deps: CallbackDeps, result: StkResult, outcome: StkOutcome, rawPayload: unknown): Promise<Settlement> {
  let matchedBy: MatchedBy = 'checkout_id';
  // By its CheckoutRequestID: the order locked first, the payment read once under that lock (a Query
  // or an expiry that settled it while we waited shows).
  let order = await lockOrderOf(trx, 'stk_payments', { checkout_request_id: result.checkoutRequestId });
  let payment: StkPayment | undefined = order ? await trx('stk_payments').where({ checkout_request_id: result.checkoutRequestId }).first() : undefined;
  if (!payment) {
    const match = await matchByPhoneAndAmount(trx, deps, result, outcome);
    if ('settlement' in match) return match.settlement;
    payment = match.payment;
    matchedBy = 'phone_amount_window';
    order = await loadOrder(trx, payment.order_id, { lock: true });
  }
  if (!order) return { outcome: 'orphan', alerts: [] };
  if (matchedBy === 'phone_amount_window') {
    // Under the order lock: tie the callback's ids to the payment, unless a twin callback already did.
    const claimed = await trx('stk_payments')
      .where({ id: payment.id })
      .whereNull('checkout_request_id')
      .update({ checkout_request_id: result.checkoutRequestId, merchant_request_id: result.merchantRequestId, push_outcome: 'accepted' });
    payment = await trx('stk_payments').where({ id: payment.id }).first();
    if (claimed === 0 && payment!.checkout_request_id !== result.checkoutRequestId) return orphan(trx, result, outcome, 'the matching payment was tied to another callback meanwhile');
    if (claimed === 0) matchedBy = 'checkout_id';
  }
  return applyStkReport(trx, deps.outbox, order, payment!, { source: 'callback', outcome, matchedBy, rawPayload });
}

/**
 * The pushes a callback with an unknown CheckoutRequestID can belong to: ours, for this phone and
 * amount, recent, whose CheckoutRequestID we never learnt. Only a success carries phone and amount;
 * exactly one candidate is a match, several are for an operator.
 */
async function matchByPhoneAndAmount(
  trx: Knex.Transaction,
  deps: CallbackDeps,
  result: StkResult,
  outcome: StkOutcome,
): Promise<{ payment: StkPayment } | { settlement: Settlement }> {
  if (outcome.kind !== 'paid' || !outcome.phone || outcome.amount === undefined) return { settlement: await orphan(trx, result, outcome, 'unknown CheckoutRequestID') };
  const cents = parseKesToCents(outcome.amount);
  if (cents === null || cents % 100 !== 0) return { settlement: await orphan(trx, result, outcome, 'unknown CheckoutRequestID, amount not whole KES') };
  const recent: Array<StkPayment & { push_outcome: string }> = await trx('stk_payments')
    .whereNull('checkout_request_id')
    .where({ msisdn: outcome.phone, amount_kes: cents / 100 })
    .where('push_attempts', '>', 0)
    .where('push_started_at', '>=', trx.raw(`now() - make_interval(secs => ?)`, [deps.config.reconcile.matchWindowSeconds]))
    .orderBy('push_started_at')
    .limit(10);
  // Pushes whose outcome we never saw come first; one Daraja refused with an answer only if there is
  // no such push (a gateway that answered an error although the push went out).
  const unseen = recent.filter((p) => p.push_outcome === 'unknown' || p.push_outcome === 'in_flight');
  const candidates = unseen.length > 0 ? unseen : recent;
  if (candidates.length === 1) return { payment: candidates[0]! };
  if (candidates.length === 0) return { settlement: await orphan(trx, result, outcome, 'no push we sent matches its phone and amount') };
  const alert = await raiseOpsAlert(trx, {
    kind: 'ambiguous_payment_match',
    severity: 'error',
    orderId: null,
    message: 'a payment with an unknown CheckoutRequestID matches several recent orders (same phone and amount): credit the right one by hand',
    details: { checkoutRequestId: result.checkoutRequestId, receipt: outcome.receipt, orderIds: candidates.map((c) => c.order_id) },
    dedupeKey: `ambiguous-payment-${result.checkoutRequestId}`,
  });
  return { settlement: { outcome: 'ambiguous', alerts: [alert] } };
}

/** A callback we cannot tie to an order. If it says someone paid, that money needs a person. */
async function orphan(trx: Knex.Transaction, result: StkResult, outcome: StkOutcome, why: string): Promise<Settlement> {
  if (outcome.kind !== 'paid') return { outcome: 'orphan', alerts: [] };
  const alert = await raiseOpsAlert(trx, {
    kind: 'orphan_payment',
    severity: 'error',
    orderId: null,
    message: `a success callback matches no order (${why}): find the payer in the M-Pesa statement, credit or refund`,
    details: { checkoutRequestId: result.checkoutRequestId, receipt: outcome.receipt, amount: outcome.amount },
    dedupeKey: `orphan-payment-${result.checkoutRequestId}`,
  });
  return { outcome: 'orphan', alerts: [alert] };
}
