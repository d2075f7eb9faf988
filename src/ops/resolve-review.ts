import type { Knex } from 'knex';
import type { Db } from '../db/knex';
import { creditFromPool, release, reservationState, settle, transferIds, type ReservationState } from '../ledger/gold';
import type { Logger } from '../lib/logger';
import { type OrderStatus } from '../orders/order-states';
import type { Metrics } from '../infra/metrics';
import { recordResolution } from './record-resolution';
import { isSellResolutionAction, resolveSellReview, type SellResolutionAction, type SellResolveResult } from './resolve-sell-review';

export type ResolutionAction = 'credit' | 'refund_note' | 'close';

export interface ResolveReview {
  orderId: string;
  /** Buy actions here; sell actions (paid_out, not_paid) in resolve-sell-review.ts. */
  action: ResolutionAction | SellResolutionAction;
  note: string;
  operator: string;
}

export type ResolveResult =
  | { ok: true; orderId: string; action: ResolutionAction; fromStatus: 'review'; toStatus: string; transferId: string | null }
  | { ok: false; error: 'not_found' }
  | { ok: false; error: 'not_in_review'; status: string }
  /** Sell orders in review wait on a payout, not a reservation: resolved on the payout side, not here. */
  | { ok: false; error: 'not_a_buy'; kind: string }
  | { ok: false; error: 'pool_insufficient' | 'already_credited' }
  /** A sell action (paid_out, not_paid) on a buy. */
  | { ok: false; error: 'not_a_sell'; kind: string }
  | SellResolveResult;

/**
 * Where each action leaves the order. An operator's decision is final: `refunded` and `closed` are
 * statuses of their own that no callback, STK Query or expiry moves (a plain `failed` would be taken
 * for a failed payment, and a repeated success callback would then credit gold on top of the refund).
 */
const OUTCOME: Record<ResolutionAction, { to: OrderStatus; failureCode?: string }> = {
  credit: { to: 'paid' },
  refund_note: { to: 'refunded', failureCode: 'refunded_outside' },
  close: { to: 'closed', failureCode: 'closed_by_operator' },
};

/**
 * An operator settles an order that is in `review` (a callback that did not match, a payment that
 * needs a person), in ONE transaction with its audit row:
 *  - credit: the customer paid; post the held reservation, or, if it was already released, reserve
 *    again from the pool and post (refused, with nothing changed, if the pool cannot cover it);
 *  - refund_note: the money was returned outside the system (e.g. an M-Pesa reversal); the
 *    reservation goes back to the pool and the note records the refund;
 *  - close: nothing to pay or refund; any held reservation goes back to the pool.
 * The order row is locked and moved by a conditional update, so two operators (or a late callback)
 * cannot both resolve it.
 */
export async function resolveReview(deps: { db: Db; log: Logger; metrics?: Metrics }, req: ResolveReview): Promise<ResolveResult> {
  const result = await deps.db.transaction(async (trx): Promise<ResolveResult> => {
    const order = await trx('orders').where({ id: req.orderId }).forUpdate().first();
    if (!order) return { ok: false, error: 'not_found' };
    // Sales are settled on the payout side (paid_out / not_paid), in the same transaction and lock.
    if (order.kind === 'sell') return resolveSellReview(trx, order, req);
    if (order.kind !== 'buy') return { ok: false, error: 'not_a_buy', kind: order.kind };
    if (isSellResolutionAction(req.action)) return { ok: false, error: 'not_a_sell', kind: order.kind };
    if (order.status !== 'review') return { ok: false, error: 'not_in_review', status: order.status };

    const reservation = await reservationState(trx, transferIds.buyReservation(order.id));
    let transferId: string | null = null;
    if (req.action === 'credit') {
      const credited = await credit(trx, order, reservation);
      if (!credited.ok) return credited;
      transferId = credited.transferId;
    } else {
      // Gold the customer already holds cannot be taken back by a note: that needs a sell or an adjustment.
      if (reservation === 'posted') return { ok: false, error: 'already_credited' };
      if (reservation === 'pending') {
        await release(trx, transferIds.buyReservation(order.id), 'voided');
        transferId = transferIds.resolution(transferIds.buyReservation(order.id), 'voided');
      }
    }

    const outcome = OUTCOME[req.action];
    await recordResolution(trx, order.id, req, outcome, transferId);
    return { ok: true, orderId: order.id, action: req.action, fromStatus: 'review', toStatus: outcome.to, transferId };
  });
  if (result.ok) {
    deps.metrics?.inc('ops_review_resolutions_total', { action: req.action });
    deps.log.info({ orderId: req.orderId, action: req.action, operator: req.operator, transferId: result.transferId }, 'review resolved');
  }
  return result;
}

/**
 * An operator's credit: a pending reservation is posted; one released (voided or expired) or never
 * made is reserved again under the order's own review-credit id and posted at once.
 */
async function credit(
  trx: Knex.Transaction,
  order: { id: string; customer_id: number; grams_ug: number; reference: string },
  reservation: ReservationState,
): Promise<{ ok: true; transferId: string } | { ok: false; error: 'pool_insufficient' | 'already_credited' }> {
  const held = transferIds.buyReservation(order.id);
  if (reservation === 'posted') return { ok: false, error: 'already_credited' };
  if (reservation === 'pending') {
    await settle(trx, held, 'posted');
    return { ok: true, transferId: transferIds.resolution(held, 'posted') };
  }
  const id = transferIds.reviewCredit(order.id);
  const credited = await creditFromPool(trx, { id, customerId: order.customer_id, gramsUg: order.grams_ug, reference: order.reference });
  if (!credited.ok) return { ok: false, error: 'pool_insufficient' };
  return { ok: true, transferId: transferIds.resolution(id, 'posted') };
}
