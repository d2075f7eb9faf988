import type { Trx } from '../ledger/ledger';

export type OrderStatus =
  | 'created'
  | 'reserved'
  | 'stk_requested'
  | 'stk_sent'
  // sell: the B2C request is being sent / Daraja accepted it and its result is awaited
  | 'payout_requested'
  | 'payout_sent'
  | 'paid'
  | 'failed'
  | 'expired'
  | 'review'
  // Operator decisions (review resolution): final, no callback, Query, Result or expiry moves them.
  | 'refunded'
  | 'closed';

export interface BuyOrder {
  id: string;
  reference: string;
  customer_id: number;
  msisdn: string;
  amount_cents: number;
  price_cents_per_gram: number;
  grams_ug: number;
  status: OrderStatus;
  failure_code: string | null;
  language: string;
}

/** Orders that may still be charged: their reservation is open and M-Pesa may still answer. */
export const OPEN_BUY_STATUSES: OrderStatus[] = ['created', 'reserved', 'stk_requested', 'stk_sent'];

export async function loadBuyOrder(db: Trx, id: string, opts: { lock?: boolean } = {}): Promise<BuyOrder | undefined> {
  const q = db('orders')
    .join('customers', 'customers.id', 'orders.customer_id')
    .where('orders.id', id)
    .first('orders.*', 'customers.language');
  return opts.lock ? q.forUpdate('orders') : q;
}

/**
 * Every order transition is a conditional UPDATE: it happens only from the expected states, and
 * 0 rows means someone else already moved the order, so the caller stops.
 */
export async function transitionOrder(
  db: Trx,
  id: string,
  from: OrderStatus[],
  to: OrderStatus,
  extra: Record<string, unknown> = {},
): Promise<boolean> {
  const n = await db('orders').where({ id }).whereIn('status', from).update({ status: to, updated_at: db.fn.now(), ...extra });
  return n === 1;
}

export function reservationId(orderId: string): string {
  return `buy-${orderId}`;
}
