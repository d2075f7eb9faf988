import type { Db } from '../db/knex';
import { formatKes } from '../lib/units';
import { reservationState, transferIds, type ReservationState } from '../ledger/gold';
import { orderView, type OrderView } from './list-orders';

/**
 * What we know of one payment, for an operator: the order, what M-Pesa said, every callback received
 * for it, the state of its gold reservation and any review resolution. Phone numbers are masked:
 * this answer ends up in tickets and chats (the CSV export is where full numbers are).
 */
export interface PaymentRecord {
  checkoutRequestId: string | null;
  order: (OrderView & { gramsUg: number; priceKesPerGram: string }) | null;
  payment: {
    merchantRequestId: string | null;
    pushAttempts: number;
    lastPushError: string | null;
    resultCode: number | null;
    resultDesc: string | null;
    receipt: string | null;
    transactionDate: string | null;
    settledBy: string | null;
    acceptedAt: string | null;
    settledAt: string | null;
  } | null;
  /** pending (held), posted (credited), voided/expired (back in the pool), or none (never reserved). */
  reservation: ReservationState | null;
  callbacks: Array<{ id: number; outcome: string; resultCode: number | null; receivedAt: string }>;
  resolutions: Array<{ action: string; operator: string; note: string; fromStatus: string; toStatus: string; createdAt: string }>;
}

export async function paymentRecordByCheckoutId(db: Db, checkoutRequestId: string): Promise<PaymentRecord | null> {
  const payment = await db('stk_payments').where({ checkout_request_id: checkoutRequestId }).first();
  if (payment) return recordFor(db, payment.order_id);
  // Unknown to our orders: callbacks for it (orphans) are still worth showing.
  const callbacks = await callbacksFor(db, checkoutRequestId);
  if (callbacks.length === 0) return null;
  return { checkoutRequestId, order: null, payment: null, reservation: null, callbacks, resolutions: [] };
}

export async function paymentRecordByOrderId(db: Db, orderId: string): Promise<PaymentRecord | null> {
  return recordFor(db, orderId);
}

async function recordFor(db: Db, orderId: string): Promise<PaymentRecord | null> {
  const order = await db('orders').where({ id: orderId }).first();
  if (!order) return null;
  const payment = await db('stk_payments').where({ order_id: orderId }).first();
  const checkoutRequestId: string | null = payment?.checkout_request_id ?? null;
  const [callbacks, reservation, resolutions] = await Promise.all([
    checkoutRequestId ? callbacksFor(db, checkoutRequestId) : Promise.resolve([]),
    order.kind === 'buy' ? reservationState(db, transferIds.buyReservation(orderId)) : Promise.resolve(null),
    db('order_resolutions').where({ order_id: orderId }).orderBy('id').select('action', 'operator', 'note', 'from_status', 'to_status', 'created_at'),
  ]);
  return {
    checkoutRequestId,
    order: { ...orderView(order), gramsUg: order.grams_ug, priceKesPerGram: formatKes(order.price_cents_per_gram) },
    payment: payment
      ? {
          merchantRequestId: payment.merchant_request_id ?? null,
          pushAttempts: payment.push_attempts,
          lastPushError: payment.last_push_error ?? null,
          resultCode: payment.result_code ?? null,
          resultDesc: payment.result_desc ?? null,
          receipt: payment.mpesa_receipt ?? null,
          transactionDate: payment.transaction_date ?? null,
          settledBy: payment.settled_by ?? null,
          acceptedAt: iso(payment.accepted_at),
          settledAt: iso(payment.settled_at),
        }
      : null,
    reservation,
    callbacks,
    resolutions: resolutions.map((r: { action: string; operator: string; note: string; from_status: string; to_status: string; created_at: Date }) => ({
      action: r.action,
      operator: r.operator,
      note: r.note,
      fromStatus: r.from_status,
      toStatus: r.to_status,
      createdAt: iso(r.created_at)!,
    })),
  };
}

async function callbacksFor(db: Db, checkoutRequestId: string): Promise<PaymentRecord['callbacks']> {
  const rows: Array<{ id: number; outcome: string; payload: { Body?: { stkCallback?: { ResultCode?: unknown } } }; received_at: Date }> = await db('mpesa_callbacks')
    .where({ checkout_request_id: checkoutRequestId })
    .orderBy('id')
    .select('id', 'outcome', 'payload', 'received_at');
  return rows.map((r) => {
    const code = Number(r.payload?.Body?.stkCallback?.ResultCode);
    return { id: r.id, outcome: r.outcome, resultCode: Number.isInteger(code) ? code : null, receivedAt: iso(r.received_at)! };
  });
}


function iso(v: Date | string | null | undefined): string | null {
  if (v === null || v === undefined) return null;
  return (v instanceof Date ? v : new Date(v)).toISOString();
}
