import type { Knex } from 'knex';
import type { RunConfig } from '../../config';
import type { Db } from '../../db/knex';
import type { Outbox } from '../../infra/outbox';
import type { Logger } from '../../lib/logger';
import { AWAITING_PAYOUT } from '../../orders/order-states';
import { loadOrder, transitionOrder } from '../../orders/orders';
import { type B2cResult, type QueueTimeout, type TransactionStatusResult, parseDarajaDateTime } from '../../vendors/daraja-callbacks';
import { type PayoutCallbackOutcome, type PayoutVerdict, settlePayoutOutcome } from './payout-verdict';
import { loadPayout, recordPayoutCallback, scheduleStatusCheck } from './payouts';

export interface PayoutSettleDeps {
  db: Db;
  outbox: Outbox;
  log: Logger;
  config: Pick<RunConfig, 'payouts'>;
}

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
      // One timeout asks at once; its copies add nothing (each check counts towards PAYOUT_STATUS_CHECKS,
      // so copies would push the sale into review before M-Pesa had time to answer).
      const asked = await trx('mpesa_callbacks').where({ kind: 'b2c_timeout', originator_conversation_id: payout.id, outcome: 'status_check' }).first('id');
      if (asked) return { outcome: 'duplicate' };
      await scheduleStatusCheck(trx, deps.outbox, payout.id, 0);
      return { outcome: 'status_check' };
    };
    const outcome = await decided();
    await recordPayoutCallback(trx, 'b2c_timeout', timeout.originatorConversationId, outcome.outcome, raw);
    return outcome;
  }, { originatorConversationId: timeout.originatorConversationId, callback: 'b2c_timeout' });
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
