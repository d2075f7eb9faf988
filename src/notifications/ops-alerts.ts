import type { Knex } from 'knex';
import type { Logger } from '../lib/logger';

/**
 * What needs a person. Each kind names a situation the service could not resolve on its own; the
 * README lists them with what to do.
 */
export type OpsAlertKind =
  /** A customer paid after their order had failed or expired, and the pool could not cover the gold. */
  | 'late_payment_unallocated'
  /** A success callback matched no order: money arrived that we cannot tie to a purchase. */
  | 'orphan_payment'
  /** A success callback matched several recent pushes (same phone and amount): which one is unclear. */
  | 'ambiguous_payment_match'
  /** A success callback for an order that was already paid through another push: paid twice. */
  | 'duplicate_payment'
  /** A reservation expired without any final answer from M-Pesa: check the M-Pesa statement. */
  | 'payment_unconfirmed'
  /** A callback contradicted an earlier Query answer (e.g. Query said paid, the callback says failed). */
  | 'conflicting_results'
  /** A payout was reported paid after the sale had been failed and the gold returned (or closed by an operator as not paid): paid twice. */
  | 'payout_paid_after_failure'
  /** A payout was reported failed after the sale was paid (by M-Pesa's success or an operator's paid_out): the seller may have neither. */
  | 'payout_failed_after_paid'
  /** A sale's payout got no Result, timeout or status answer after every Transaction Status check: held in review, gold reserved. */
  | 'payout_unconfirmed'
  /** M-Pesa paid a sale whose gold the ledger had already released back to the seller: held in review. */
  | 'payout_ledger_conflict'
  /** The price feed moved more than PRICE_MAX_MOVE_PERCENT from the last accepted quote: trading paused. */
  | 'price_jump'
  /** A Paybill (C2B) payment could not be turned into gold (no wallet, amount, price, pool): it waits in review. */
  | 'c2b_payment_unallocated'
  /** A Paybill (C2B) confirmation whose body could not be read: the money arrived, nothing was credited. */
  | 'c2b_unparsed'
  /** Africa's Talking refuses our account (sender id, balance, risk hold): no SMS goes out. */
  | 'sms_account_problem'
  /** M-Pesa reports a payment for an order an operator had refunded or closed: nothing credited. */
  | 'payment_after_resolution';

export interface OpsAlert {
  kind: OpsAlertKind;
  severity: 'error' | 'warn';
  orderId: string | null;
  message: string;
  details?: Record<string, unknown>;
  /** One alert per event: raising the same key again is a no-op. */
  dedupeKey: string;
}

/** Records the alert in the caller's transaction; log it with logOpsAlerts once that transaction commits. */
export async function raiseOpsAlert(trx: Knex.Transaction, alert: OpsAlert): Promise<OpsAlert> {
  await trx('ops_alerts')
    .insert({
      kind: alert.kind,
      severity: alert.severity,
      order_id: alert.orderId,
      message: alert.message,
      details: JSON.stringify(alert.details ?? {}),
      dedupe_key: alert.dedupeKey,
    })
    .onConflict('dedupe_key')
    .ignore();
  return alert;
}

/** After commit: each alert at its level, so log-based alerting sees it as well as the table. */
export function logOpsAlerts(log: Logger, alerts: OpsAlert[]): void {
  for (const a of alerts) log[a.severity]({ opsAlert: a.kind, orderId: a.orderId, ...a.details }, a.message);
}
