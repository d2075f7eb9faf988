import type { Knex } from 'knex';
import type { Db } from '../../db/knex';
import type { Outbox } from '../../infra/outbox';
import type { Logger } from '../../lib/logger';
import { raiseOpsAlert } from '../../notifications/ops-alerts';
import type { RunConfig } from '../../config';
import { parseDarajaDateTime, type B2cResult, type QueueTimeout, type TransactionStatusResult } from '../../vendors/daraja-callbacks';
import { loadOrder, transitionOrder } from '../../orders/orders';
import { type OrderStatus } from '../../orders/order-states';
import { loadPayout, recordPayoutCallback, scheduleStatusCheck, type Payout } from './payouts';
import { AWAITING_PAYOUT } from '../../orders/order-states';
import { completeSellOrder, failSellOrder, holdSellOrderForReview, sellReasonForResultCode, type PayoutResultColumns } from './sell-outcomes';

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

export interface PayoutSettleDeps {
  db: Db;
  outbox: Outbox;
  log: Logger;
  config: Pick<RunConfig, 'payouts'>;
}

/**
 * What M-Pesa says became of a payout, from a B2C Result or a Transaction Status Result alike: both
 * settle through settlePayoutOutcome, so the two can race without paying or returning gold twice.
 */
export type PayoutVerdict =
  | { kind: 'success'; payoutId: string; conversationId: string | null; receipt: string | undefined; amountKes: number | undefined; amountText: string | undefined; receiverName: string | null; completedAt: Date | null; result: PayoutResultColumns }
  | { kind: 'failure'; payoutId: string; result: PayoutResultColumns };

/** A B2C Result (ResultURL). */
export async function settleB2cResult(deps: PayoutSettleDeps, result: B2cResult, raw: unknown): Promise<PayoutCallbackOutcome> {
  const columns = { result_code: result.resultCodeText, result_desc: result.resultDesc.slice(0, 300), result_payload: raw };
  const verdict: PayoutVerdict =
    result.resultCode === 0 && result.resultCodeText === '0'
      ? {
          kind: 'success',
          payoutId: result.originatorConversationId,
          conversationId: result.conversationId,
          receipt: result.receipt ?? result.transactionId,
          amountKes: result.amountKes,
          amountText: result.amount,
          receiverName: result.receiverName ?? null,
          completedAt: result.completedAt ? parseDarajaDateTime(result.completedAt) : null,
          result: columns,
        }
      : { kind: 'failure', payoutId: result.originatorConversationId, result: columns };
  return inTransaction(deps, async (trx) => {
    const outcome = await settlePayoutOutcome(trx, deps, verdict);
    await recordPayoutCallback(trx, 'b2c_result', result.originatorConversationId, outcome.outcome, raw);
    return outcome;
  }, { originatorConversationId: result.originatorConversationId, resultCode: result.resultCodeText, callback: 'b2c_result' });
}

/** Transaction Status names the payout's state; only these two words decide anything. */
const STATUS_COMPLETED = /^completed$/i;
const STATUS_FAILED = /^(declined|cancelled|canceled|expired|failed)$/i;

/**
 * A Transaction Status Result. Matched by the payout's OriginatorConversationID in its parameters, or
 * by the query's own ids (stored when the query was sent). Completed or failed: settled exactly as a
 * B2C Result would be. Anything else (not found yet, the query refused): recorded; the next scheduled
 * check asks again, and the last one decides (src/payments/payout-status.ts).
 */
export async function settleStatusResult(deps: PayoutSettleDeps, result: TransactionStatusResult, raw: unknown): Promise<PayoutCallbackOutcome> {
  return inTransaction(deps, async (trx) => {
    const query = await trx('payout_status_queries')
      .where({ query_originator_conversation_id: result.queryOriginatorConversationId })
      .orWhere({ query_conversation_id: result.queryConversationId })
      .first();
    if (query) {
      await trx('payout_status_queries')
        .where({ id: query.id })
        .update({ result_code: result.resultCodeText, result_desc: result.resultDesc.slice(0, 300), transaction_status: result.transactionStatus ?? null, answered_at: trx.fn.now() });
    }
    const payoutId = result.originatorConversationId ?? query?.payout_id;
    const decided = async (): Promise<{ outcome: PayoutCallbackOutcome }> => {
      if (!payoutId) return { outcome: 'orphan' };
      if (query && result.originatorConversationId && query.payout_id !== result.originatorConversationId) {
        deps.log.warn({ queryId: query.id, payoutId: query.payout_id, answeredFor: result.originatorConversationId }, 'status result names another payout than its query');
        return { outcome: 'mismatch' };
      }
      const columns = { result_code: result.resultCodeText, result_desc: `${result.transactionStatus ?? ''} ${result.resultDesc}`.trim().slice(0, 300), result_payload: raw };
      const state = result.resultCode === 0 && result.resultCodeText === '0' ? result.transactionStatus ?? '' : '';
      if (STATUS_COMPLETED.test(state)) {
        return settlePayoutOutcome(trx, deps, {
          kind: 'success',
          payoutId,
          conversationId: result.conversationId ?? null,
          receipt: result.receipt,
          amountKes: result.amountKes,
          amountText: result.amount,
          receiverName: result.creditPartyName ?? null,
          completedAt: result.finalisedTime ? parseCompactEat(result.finalisedTime) : null,
          result: columns,
        });
      }
      if (STATUS_FAILED.test(state)) return settlePayoutOutcome(trx, deps, { kind: 'failure', payoutId, result: { ...columns, result_code: `status_${state.toLowerCase()}` } });
      return { outcome: (await loadPayout(trx, payoutId)) ? 'undecided' : 'orphan' };
    };
    const outcome = await decided();
    await recordPayoutCallback(trx, 'b2c_status', payoutId ?? result.queryOriginatorConversationId, outcome.outcome, raw);
    return outcome;
  }, { statusQuery: result.queryOriginatorConversationId, resultCode: result.resultCodeText, transactionStatus: result.transactionStatus, callback: 'b2c_status' });
}

/**
 * A body at QueueTimeOutURL. It does NOT mean the payout failed (it may have gone through): it proves
 * M-Pesa has the request, so the payout counts as accepted, and Transaction Status is asked now. A timeout of a status query itself needs nothing: its next check is scheduled.
 */
export async function settleQueueTimeout(deps: PayoutSettleDeps, timeout: QueueTimeout, raw: unknown): Promise<PayoutCallbackOutcome> {
  return inTransaction(deps, async (trx) => {
    const decided = async (): Promise<{ outcome: PayoutCallbackOutcome }> => {
      const payout = await loadPayout(trx, timeout.originatorConversationId);
      if (!payout) {
        const query = await trx('payout_status_queries').where({ query_originator_conversation_id: timeout.originatorConversationId }).first('id');
        return { outcome: query ? 'undecided' : 'orphan' };
      }
      const order = await loadOrder(trx, payout.order_id, { lock: true });
      if (!order || !AWAITING_PAYOUT.includes(order.status)) return { outcome: 'duplicate' };
      // A timeout comes from M-Pesa's queue: the request reached it, whatever our attempt heard. The payout
      // is accepted from here on: never sent again, and never failed for want of an answer (only a
      // definite Result or status answer, or an operator, may return the gold).
      await trx('payouts')
        .where({ id: payout.id })
        .whereIn('status', ['created', 'requested'])
        .update({ status: 'accepted', accepted_at: trx.fn.now(), maybe_sent: true, updated_at: trx.fn.now() });
      await transitionOrder(trx, order.id, ['payout_requested'], 'payout_sent');
      await scheduleStatusCheck(trx, deps.outbox, payout.id, 0);
      return { outcome: 'status_check' };
    };
    const outcome = await decided();
    await recordPayoutCallback(trx, 'b2c_timeout', timeout.originatorConversationId, outcome.outcome, raw);
    return outcome;
  }, { originatorConversationId: timeout.originatorConversationId, callback: 'b2c_timeout' });
}

/**
 * Applies a verdict exactly once. The order row is locked first, so racing callbacks (a Result and a
 * status answer, or five copies of one Result) queue behind each other; every later one finds the
 * order settled and changes nothing.
 */
export async function settlePayoutOutcome(trx: Knex.Transaction, deps: Pick<PayoutSettleDeps, 'outbox' | 'log'>, v: PayoutVerdict): Promise<{ outcome: PayoutCallbackOutcome }> {
  const found = await loadPayout(trx, v.payoutId);
  if (!found) return { outcome: 'orphan' };
  const order = await loadOrder(trx, found.order_id, { lock: true });
  if (!order) return { outcome: 'orphan' };
  // Re-read under the order lock: what another callback did before we got the lock counts.
  const payout = (await loadPayout(trx, v.payoutId))!;
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
      deps.log.error({ orderId: order.id, payoutId: payout.id, resultCode: v.result.result_code }, `payout reported failed after ${decided}`);
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

/** YYYYMMDDHHmmss in East Africa Time (Transaction Status's FinalisedTime) as an instant; null if not a real one. */
function parseCompactEat(value: string): Date | null {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(value);
  return m ? parseDarajaDateTime(`${m[3]}.${m[2]}.${m[1]} ${m[4]}:${m[5]}:${m[6]}`) : null;
}

async function inTransaction(
  deps: PayoutSettleDeps,
  fn: (trx: Knex.Transaction) => Promise<{ outcome: PayoutCallbackOutcome }>,
  logContext: Record<string, unknown>,
): Promise<PayoutCallbackOutcome> {
  const { outcome } = await deps.outbox.transaction(fn);
  const level = outcome === 'conflict' ? 'error' : outcome === 'orphan' || outcome === 'mismatch' ? 'warn' : 'info';
  deps.log[level]({ ...logContext, outcome }, 'payout callback');
  return outcome;
}
