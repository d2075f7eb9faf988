import type { Knex } from 'knex';
import { transitionOrder } from '../orders/orders';
import { type OrderStatus } from '../orders/order-states';

/**
 * The end of every review resolution, buy or sell, in the caller's transaction with the order row
 * locked: the order leaves `review` by a conditional update, the audit row names who did what and which
 * transfer moved, and the order's open ops alerts are answered by it.
 */
export async function recordResolution(
  trx: Knex.Transaction,
  orderId: string,
  req: { action: string; note: string; operator: string },
  outcome: { to: OrderStatus; failureCode?: string },
  transferId: string | null,
): Promise<void> {
  const extra = outcome.failureCode ? { failure_code: outcome.failureCode, failure_reason: req.note.slice(0, 300) } : {};
  if (!(await transitionOrder(trx, orderId, ['review'], outcome.to, extra))) {
    throw new Error(`order ${orderId} left review while locked`);
  }
  await trx('order_resolutions').insert({
    order_id: orderId,
    action: req.action,
    operator: req.operator,
    note: req.note,
    from_status: 'review',
    to_status: outcome.to,
    transfer_id: transferId,
  });
  await trx('ops_alerts')
    .where({ order_id: orderId })
    .whereNull('resolved_at')
    .update({ resolved_at: trx.fn.now(), resolution: `${req.action} by ${req.operator}` });
}
