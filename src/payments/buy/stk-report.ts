import type { Knex } from 'knex';
import type { OpsAlert } from '../../notifications/ops-alerts';

/** What an STK result report is (who reported it, what it says) and the settlement it comes to. */

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

export interface Report {
  source: SettledBy;
  outcome: StkOutcome;
  /** Callbacks only: how the callback was tied to this payment, and its raw body. */
  matchedBy?: MatchedBy;
  rawPayload?: unknown;
}

export const nothing = (outcome: SettlementOutcome): Settlement => ({ outcome, alerts: [] });

export function resultColumns(trx: Knex.Transaction, report: Report) {
  const o = report.outcome;
  return {
    ...(o.kind === 'failed' ? { result_code: o.resultCode, result_desc: o.resultDesc.slice(0, 300) } : {}),
    ...(o.kind === 'paid' ? { result_code: 0, result_desc: o.resultDesc.slice(0, 300) } : {}),
    ...callbackColumns(report),
    settled_by: report.source,
    settled_at: trx.fn.now(),
  };
}

export function callbackColumns(report: Report) {
  if (report.source !== 'callback') return {};
  return { callback_payload: JSON.stringify(report.rawPayload ?? null), matched_by: report.matchedBy ?? 'checkout_id' };
}
