import type { Db } from '../db/knex';
import { maskMsisdn } from '../lib/msisdn';
import { formatGrams, formatKes } from '../lib/units';

/** An order as operators see it, in every ops answer: amounts formatted, the phone masked. */
export interface OrderView {
  id: string;
  reference: string;
  kind: string;
  status: string;
  phone: string;
  amountKes: string;
  grams: string;
  failureCode: string | null;
  failureReason: string | null;
  createdAt: string;
  updatedAt: string;
}

export function orderView(r: {
  id: string; reference: string; kind: string; status: string; msisdn: string; amount_cents: number; grams_ug: number;
  failure_code?: string | null; failure_reason?: string | null; created_at: Date | string; updated_at: Date | string;
}): OrderView {
  return {
    id: r.id,
    reference: r.reference,
    kind: r.kind,
    status: r.status,
    phone: maskMsisdn(r.msisdn),
    amountKes: formatKes(r.amount_cents),
    grams: formatGrams(r.grams_ug),
    failureCode: r.failure_code ?? null,
    failureReason: r.failure_reason ?? null,
    createdAt: new Date(r.created_at).toISOString(),
    updatedAt: new Date(r.updated_at).toISOString(),
  };
}

export interface OrderSummary extends OrderView {
  checkoutRequestId: string | null;
  receipt: string | null;
  resultCode: number | null;
}

/** Newest first, optionally only some statuses (e.g. `review`). Phones masked, as everywhere but the CSV. */
export async function listOrders(db: Db, filter: { statuses?: string[]; limit: number }): Promise<OrderSummary[]> {
  const q = db('orders')
    .leftJoin('stk_payments', 'stk_payments.order_id', 'orders.id')
    .orderBy([{ column: 'orders.created_at', order: 'desc' }, { column: 'orders.id', order: 'desc' }])
    .limit(filter.limit)
    .select(
      'orders.id', 'orders.reference', 'orders.kind', 'orders.status', 'orders.msisdn', 'orders.amount_cents', 'orders.grams_ug',
      'orders.failure_code', 'orders.failure_reason', 'orders.created_at', 'orders.updated_at',
      'stk_payments.checkout_request_id', 'stk_payments.mpesa_receipt', 'stk_payments.result_code',
    );
  if (filter.statuses?.length) q.whereIn('orders.status', filter.statuses);
  const rows = await q;
  return rows.map((r) => ({
    ...orderView(r),
    checkoutRequestId: r.checkout_request_id ?? null,
    receipt: r.mpesa_receipt ?? null,
    resultCode: r.result_code ?? null,
  }));
}
