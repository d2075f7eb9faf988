import type { Knex } from 'knex';
import type { VendorError } from '../../lib/errors';
import { asDarajaError } from '../../vendors/daraja-errors';
import { loadOrder } from '../../orders/orders';
import { loadPayout, scheduleStatusCheck, type PayoutDeps } from './payouts';
import { AWAITING_PAYOUT } from '../../orders/order-states';
import { logOpsAlerts, type OpsAlert } from '../../notifications/ops-alerts';
import { failSellOrder, holdUnconfirmedPayout } from './sell-outcomes';

/**
 * The Transaction Status check job (`payout-status-<payoutId>-<check>`). Checks form one chain: each
 * sends a query and schedules the next, PAYOUT_RESULT_WAIT_SECONDS later; a check that finds a newer
 * one scheduled (a queue timeout asked for one at once) stands down. The answer arrives at the status
 * result URL and, when it says Completed or failed, settles the payout exactly like a B2C Result.
 *
 * When PAYOUT_STATUS_CHECKS queries have gone unanswered or undecided, the last link decides:
 *  - a payout Daraja accepted goes to review (with a `payout_unconfirmed` alert): it may still complete, and a B2C payment cannot be
 *    reversed, so returning the gold could pay for gold we never took. The gold stays reserved;
 *  - a payout Daraja never acknowledged (every attempt failed, one of them without a visible answer)
 *    that M-Pesa answered "not found" for is failed and the gold returned. Had no status query ever
 *    been answered, nothing is known: review.
 */
export async function runPayoutStatusCheck(deps: PayoutDeps, payoutId: string, check: number, finalAttempt: boolean): Promise<void> {
  const payout = await loadPayout(deps.db, payoutId);
  const order = payout ? await loadOrder(deps.db, payout.order_id) : undefined;
  if (!payout || !order) {
    deps.log.error({ payoutId }, 'status check for an unknown payout');
    return;
  }
  if (!AWAITING_PAYOUT.includes(order.status) || check < payout.status_checks) return; // settled, or superseded

  if (check > deps.config.payouts.statusChecks) {
    // Once the reconciliation sweep has asked about a payout, its checks share this counter and the
    // sweep makes the last decision (reconcile-payouts.ts): a link scheduled late (a queue timeout
    // after the sweep began) stands down rather than give up early.
    if (payout.sweep_checks > 0) return;
    return giveUp(deps, payoutId);
  }

  const asked = await deps.db('payout_status_queries').where({ payout_id: payoutId, check_no: check }).whereNotNull('query_originator_conversation_id').first('id');
  if (!asked) {
    const failed = await askTransactionStatus(deps, payoutId, check);
    if (failed && failed.kind !== 'permanent' && !finalAttempt) throw failed;
    // Otherwise this check is spent; the next one tries again.
  }
  await deps.outbox.transaction(async (trx) => {
    const locked = await loadOrder(trx, order.id, { lock: true });
    const current = await loadPayout(trx, payoutId);
    if (!locked || !current || !AWAITING_PAYOUT.includes(locked.status) || current.status_checks !== check) return;
    await scheduleStatusCheck(trx, deps.outbox, payoutId, deps.config.payouts.resultWaitSeconds * 1000);
  });
}

/**
 * Sends Transaction Status query number `check` for a payout and stores the query's ids (its answer is
 * matched by them at the status result URL). Returns null once Daraja acknowledged the query, or the
 * error it failed with. Shared by the check chain and the reconciliation sweep (reconcile-payouts.ts).
 */
export async function askTransactionStatus(deps: Pick<PayoutDeps, 'db' | 'daraja' | 'log'>, payoutId: string, check: number): Promise<VendorError | null> {
  try {
    const accepted = await deps.daraja.transactionStatus({ originatorConversationId: payoutId, remarks: `Payout status check ${check}` });
    await deps.db('payout_status_queries')
      .insert({
        payout_id: payoutId,
        check_no: check,
        query_originator_conversation_id: accepted.queryOriginatorConversationId ?? null,
        query_conversation_id: accepted.queryConversationId ?? null,
      })
      .onConflict(['payout_id', 'check_no'])
      .merge();
    return null;
  } catch (err) {
    const e = asDarajaError(err);
    deps.log.warn({ payoutId, check, code: e.code, kind: e.kind }, 'transaction status query failed');
    return e;
  }
}

async function giveUp(deps: PayoutDeps, payoutId: string): Promise<void> {
  const alerts: OpsAlert[] = [];
  await deps.outbox.transaction(async (trx) => {
    const payout = (await loadPayout(trx, payoutId))!;
    const order = await loadOrder(trx, payout.order_id, { lock: true });
    if (!order || !AWAITING_PAYOUT.includes(order.status)) return;
    const checks = deps.config.payouts.statusChecks;
    if (payout.status === 'accepted' || payout.conversation_id || !(await mpesaSaysNotFound(trx, payoutId, checks))) {
      const alert = await holdUnconfirmedPayout(trx, order, payout, AWAITING_PAYOUT, `no result; ${checks} Transaction Status checks did not settle it`);
      if (alert) alerts.push(alert);
      deps.log.error({ orderId: order.id, payoutId }, 'payout outcome unknown after every status check: held for review');
      return;
    }
    deps.log.warn({ orderId: order.id, payoutId }, 'payout never acknowledged and unknown to M-Pesa: failed, gold returned');
    await failSellOrder(trx, deps.outbox, order, payout, AWAITING_PAYOUT, {
      code: 'payout_not_sent',
      description: `B2C request never acknowledged; ${checks} status checks found nothing`,
      reason: 'unavailable',
    });
  });
  logOpsAlerts(deps.log, alerts);
}

/** M-Pesa's Transaction Status code for "no such transaction". */
const NOT_FOUND = '2032';

/**
 * Returning the gold is safe only if M-Pesa itself kept saying it never saw the payout: the last check
 * was answered "not found" and no answered check said anything else. A refusal, "Pending", or silence on
 * the last check decides nothing, and the request may still be queued at Daraja: that goes to review.
 */
async function mpesaSaysNotFound(trx: Knex.Transaction, payoutId: string, lastCheck: number): Promise<boolean> {
  const answers: Array<{ check_no: number; result_code: string | null }> = await trx('payout_status_queries')
    .where({ payout_id: payoutId })
    .whereNotNull('answered_at')
    .select('check_no', 'result_code');
  return answers.some((a) => a.check_no === lastCheck) && answers.every((a) => a.result_code === NOT_FOUND);
}
