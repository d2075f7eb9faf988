import type { Knex } from 'knex';
import { asDarajaError } from '../../vendors/daraja-errors';
import type { Msisdn } from '../../lib/msisdn';
import { loadOrder, transitionOrder, type Order } from '../../orders/orders';
import { loadPayout, scheduleStatusCheck, type Payout, type PayoutDeps } from './payouts';
import { failSellOrder } from './sell-outcomes';

/**
 * The payout job: send the B2C request for a sale. The payout id is the OriginatorConversationID, so a
 * retried job sends the SAME id and Daraja refuses a second payout (`{duplicate: true}`: it was
 * already accepted). The order is `payout_requested` before Daraja hears of it; once accepted it is
 * never sent again, and a Transaction Status check is scheduled in case no result ever arrives.
 *
 * Failures: retryable ones throw (BullMQ backoff). A permanent one, or the last attempt, returns the
 * gold (voids the pending transfer), fails the order and tells the customer, but only when no attempt
 * could have reached M-Pesa. If one might have (a network error or timeout, where the request may
 * have been queued), Transaction Status decides instead: voiding then could pay without taking gold.
 *
 * Each attempt is recorded before its request leaves (attempts + 1 and payouts.in_flight_at, committed
 * on their own) and the marker is cleared with the answer. A worker killed in between leaves the marker
 * set: the re-run folds it into maybe_sent, so a definite refusal heard by the re-run (or by any later
 * attempt) asks Transaction Status instead of returning the gold.
 */
export async function runPayout(deps: PayoutDeps, payoutId: string, finalAttempt: boolean): Promise<void> {
  const payout = await loadPayout(deps.db, payoutId);
  const order = payout ? await loadOrder(deps.db, payout.order_id) : undefined;
  if (!payout || !order) {
    deps.log.error({ payoutId }, 'payout job for an unknown payout');
    return;
  }
  // Record before calling.
  await deps.db.transaction(async (trx) => {
    if (await transitionOrder(trx, order.id, ['reserved'], 'payout_requested')) {
      await trx('payouts').where({ id: payout.id, status: 'created' }).update({ status: 'requested', requested_at: trx.fn.now(), updated_at: trx.fn.now() });
    }
  });
  const current = await deps.db('orders').where({ id: order.id }).first('status');
  if (current.status !== 'payout_requested') return; // accepted already, or settled
  const fresh = (await loadPayout(deps.db, payout.id))!;
  if (fresh.status !== 'requested') return; // a result or status answer got here first
  await send(deps, order, fresh, finalAttempt);
}

async function send(deps: PayoutDeps, order: Order, payout: Payout, finalAttempt: boolean): Promise<void> {
  // Record before calling, in a statement of its own (committed before the request leaves). A marker an
  // earlier attempt left behind means that attempt's request may have reached M-Pesa with nobody left
  // to hear the answer: it becomes maybe_sent, which only Transaction Status (or a Result) can clear up.
  // Under the order lock, so the sweep (which fails a sale no attempt was ever made for) and this mark
  // are one before the other, never interleaved.
  const attempt = await deps.db.transaction(async (trx): Promise<number | null> => {
    const locked = await loadOrder(trx, order.id, { lock: true });
    if (locked?.status !== 'payout_requested') return null;
    const [row] = await trx('payouts')
      .where({ id: payout.id, status: 'requested' })
      .update({
        attempts: trx.raw('attempts + 1'),
        maybe_sent: trx.raw('maybe_sent OR in_flight_at IS NOT NULL'),
        in_flight_at: trx.fn.now(),
        updated_at: trx.fn.now(),
      })
      .returning('attempts');
    return row ? Number(row.attempts) : null;
  });
  if (attempt === null) return; // settled, held or failed meanwhile: nothing to send
  if (payout.in_flight_at) {
    deps.log.warn({ orderId: order.id, payoutId: payout.id, attempts: payout.attempts }, 'an earlier b2c attempt never recorded its answer: it may have been sent');
  }
  try {
    const accepted = await deps.daraja.b2cPayment({
      originatorConversationId: payout.id,
      msisdn: payout.msisdn as Msisdn,
      amountKes: payout.amount_kes,
      remarks: `Gold sale ${order.reference}`,
      occasion: order.reference,
    });
    await deps.outbox.transaction(async (trx) => {
      await trx('payouts').where({ id: payout.id }).update({ in_flight_at: null });
      await trx('payouts')
        .where({ id: payout.id, status: 'requested' })
        .update({ status: 'accepted', accepted_at: trx.fn.now(), last_error: null, updated_at: trx.fn.now() });
      if (!accepted.duplicate) {
        await trx('payouts').where({ id: payout.id }).whereNull('conversation_id').update({ conversation_id: accepted.conversationId });
      }
      if (!(await transitionOrder(trx, order.id, ['payout_requested'], 'payout_sent'))) return;
      // If no result (nor queue timeout) ever comes, this check asks M-Pesa what happened.
      await scheduleStatusCheck(trx, deps.outbox, payout.id, deps.config.payouts.resultWaitSeconds * 1000);
    });
    deps.log.info({ orderId: order.id, payoutId: payout.id, duplicate: accepted.duplicate }, 'b2c payout accepted');
  } catch (err) {
    const e = asDarajaError(err);
    // Ambiguous: we could not see Daraja's answer (a timeout, a reset), so it may hold the request. So is a
    // 5xx with no Daraja error envelope (a gateway's error page): money may have left, so a blind void could
    // pay twice. A named refusal (spike arrest, quota) is an answer.
    const ambiguous = e.maybeProcessed || (e.httpStatus !== undefined && e.httpStatus >= 500 && e.code.startsWith('http_'));
    const final = e.kind === 'permanent' || finalAttempt;
    deps.log.warn({ orderId: order.id, payoutId: payout.id, code: e.code, kind: e.kind, final, ambiguous }, 'b2c payout request failed');
    // This attempt's answer clears ITS marker only: a marker another copy of the job set since (it counted a new
    // attempt) stands for a request that may be on its way now.
    const recordAnswer = async (q: Knex): Promise<{ maybe_sent: boolean } | undefined> =>
      (
        await q('payouts')
          .where({ id: payout.id, attempts: attempt })
          .update({ last_error: `${e.code}: ${e.message}`.slice(0, 300), maybe_sent: q.raw('maybe_sent OR ?', [ambiguous]), in_flight_at: null, updated_at: q.fn.now() })
          .returning('maybe_sent')
      )[0];
    if (!final) {
      await recordAnswer(deps.db);
      throw e;
    }
    // The last attempt: the answer and what follows from it are ONE commit under the order lock. Committed apart, the
    // cleared marker would let another copy of this job mark and send a new request in between (its marker then says
    // nothing was in flight), and the gold would go back to a seller whose second request M-Pesa may pay.
    await deps.outbox.transaction(async (trx) => {
      const locked = await loadOrder(trx, order.id, { lock: true });
      const row = await recordAnswer(trx);
      if (!row) {
        deps.log.warn({ orderId: order.id, payoutId: payout.id }, 'another b2c attempt began meanwhile: its answer decides the sale');
        return;
      }
      if (!locked || locked.status !== 'payout_requested') return;
      if (row.maybe_sent) {
        await scheduleStatusCheck(trx, deps.outbox, payout.id, deps.config.payouts.resultWaitSeconds * 1000);
        return;
      }
      await failSellOrder(trx, deps.outbox, locked, payout, ['payout_requested'], { code: `request_${e.code}`, description: e.message, reason: 'unavailable' });
    });
  }
}
