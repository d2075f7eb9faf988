import type { Knex } from 'knex';
import { settle, transferIds } from '../ledger/gold';
import { type OrderStatus } from '../orders/order-states';
import { recordResolution } from './record-resolution';

export type SellResolutionAction = 'paid_out' | 'not_paid';
export const SELL_RESOLUTION_ACTIONS: readonly SellResolutionAction[] = ['paid_out', 'not_paid'];

export function isSellResolutionAction(action: string): action is SellResolutionAction {
  return (SELL_RESOLUTION_ACTIONS as readonly string[]).includes(action);
}

export type SellResolveResult =
  | { ok: true; orderId: string; action: SellResolutionAction; fromStatus: 'review'; toStatus: OrderStatus; transferId: string }
  | { ok: false; error: 'not_in_review'; status: string }
  /** A buy action (credit, refund_note, close) on a sale. */
  | { ok: false; error: 'not_a_buy'; kind: 'sell' }
  /** The sale's gold is no longer held (already posted or returned): nothing for this resolution to move. */
  | { ok: false; error: 'sale_not_held'; transfer: string };

/**
 * Where each action leaves a sale. Both are final: `paid` and `closed` are statuses no B2C Result,
 * status answer or sweep moves (a later "paid" Result for a `closed` sale raises
 * payout_paid_after_failure and moves no gold: src/payments/settle-payout.ts).
 */
const OUTCOME: Record<SellResolutionAction, { to: OrderStatus; resolution: 'posted' | 'voided'; payoutStatus: 'paid' | 'failed'; failureCode?: string }> = {
  // The money reached the seller (checked on the M-Pesa statement): the held gold goes to the pool.
  paid_out: { to: 'paid', resolution: 'posted', payoutStatus: 'paid' },
  // It did not: the held gold goes back to the seller, and the sale is closed for good.
  not_paid: { to: 'closed', resolution: 'voided', payoutStatus: 'failed', failureCode: 'not_paid_by_operator' },
};

/**
 * An operator settles a sale in `review` (a payout nobody could confirm, a Result that did not match),
 * inside the caller's transaction, with the order row already locked by the caller (resolveReview in
 * resolve-review.ts dispatches here and writes nothing else for a sale):
 *  - paid_out: post the held customer -> pool transfer; the order is `paid`;
 *  - not_paid: void it (the seller keeps the gold); the order is `closed`.
 * The same audit trail as a buy: an order_resolutions row naming the transfer, and the order's open
 * ops alerts closed with the resolution. The ledger's answer decides: a transfer no longer pending is
 * refused with nothing changed.
 */
export async function resolveSellReview(
  trx: Knex.Transaction,
  order: { id: string; kind: string; status: string },
  req: { action: string; note: string; operator: string },
): Promise<SellResolveResult> {
  if (!isSellResolutionAction(req.action)) return { ok: false, error: 'not_a_buy', kind: 'sell' };
  if (order.status !== 'review') return { ok: false, error: 'not_in_review', status: order.status };
  const outcome = OUTCOME[req.action];

  const held = transferIds.sale(order.id);
  const moved = await settle(trx, held, outcome.resolution);
  if (moved.result === 'already_resolved') return { ok: false, error: 'sale_not_held', transfer: moved.as };
  const transferId = transferIds.resolution(held, outcome.resolution);

  await recordResolution(trx, order.id, req, outcome, transferId);
  await trx('payouts')
    .where({ order_id: order.id })
    .update({ status: outcome.payoutStatus, last_error: `${req.action} by ${req.operator}`.slice(0, 300), settled_at: trx.fn.now(), updated_at: trx.fn.now() });
  return { ok: true, orderId: order.id, action: req.action, fromStatus: 'review', toStatus: outcome.to, transferId };
}
