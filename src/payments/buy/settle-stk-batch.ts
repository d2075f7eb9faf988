import type { Knex } from 'knex';
import { settleMany, transferIds } from '../../ledger/gold';
import { queueSmsMany } from '../../notifications/queue-sms';
import { AWAITING_STK_RESULT } from '../../orders/order-states';
import { type Order, lockOrdersOf, transitionOrders } from '../../orders/orders';
import type { StkResult } from '../../vendors/daraja-callbacks';
import { type CallbackDeps, type CallbackOutcome, reportCallback, toOutcome } from './settle-stk-callback';
import { callbackShapeMismatch, receiptReuse, receiptSms } from './stk-results';
import type { StkOutcome, StkPayment } from './stk-report';

/**
 * The batched twin of the commonest branch of applyStkReport: a success callback, found by its CheckoutRequestID,
 * for an order awaiting its result, that matches, whose reservation is still pending (`pay` in stk-results.ts).
 * Many such callbacks are settled in ONE transaction with set-based statements: the orders locked in one
 * statement (id order), the payments read, then one UPDATE of stk_payments, one of orders, one INSERT of the
 * mpesa_callbacks rows, one ledger call posting every reservation (the pool row updated once), one INSERT of the
 * receipt SMS rows, one of their outbox rows, and one COMMIT; the SMS jobs are relayed after it.
 *
 * Everything else is answered `deferred`: the caller settles it one by one (settleStkCallback, THE definition of
 * what a callback does) after this transaction committed. An item is also deferred when an earlier item of the
 * same batch carries the same CheckoutRequestID, receipt or phone number: settling it here, before that earlier
 * item, could then give another result than settling them in arrival order (a second copy, a reused receipt, a
 * receipt SMS quoting another balance). So a batch leaves the same rows as its items settled one by one in
 * arrival order (test/property/settle-batch.test.ts pins it).
 *
 * All or nothing: a throw means nothing of the batch happened (the caller then settles every item one by one).
 * `relayed` settles once the batch's SMS jobs were handed to the queue (after COMMIT, never rejects).
 */
export interface CallbackItem {
  result: StkResult;
  rawPayload: unknown;
}

export type BatchAnswer = CallbackOutcome | 'deferred';

type Paid = Extract<StkOutcome, { kind: 'paid' }>;

interface Settling {
  index: number;
  item: CallbackItem;
  paid: Paid & { receipt: string };
  order: Order;
  payment: StkPayment;
}

interface PaymentRow extends StkPayment {
  reservation_pending: boolean;
  receipt_used_by: number | null;
}

export async function settlePaidBatch(deps: CallbackDeps, items: readonly CallbackItem[]): Promise<{ answers: BatchAnswer[]; relayed: Promise<void> }> {
  const answers: BatchAnswer[] = items.map(() => 'deferred');
  // Only success callbacks can be batched: the others never take a lock here.
  const candidates = [...new Set(items.filter((i) => i.result.resultCode === 0).map((i) => i.result.checkoutRequestId))];
  if (candidates.length === 0) return { answers, relayed: Promise.resolve() };
  const settled: Settling[] = [];
  // Answers at COMMIT; the SMS jobs are relayed meanwhile (`relayed`), so the next batch need not wait for Redis.
  const { relayed } = await deps.outbox.transactionRelayingAfter(async (trx) => {
    const orders = await lockOrdersOf(trx, 'stk_payments', 'checkout_request_id', candidates);
    if (orders.length === 0) return;
    const payments = await readPayments(trx, orders, items);
    const orderById = new Map(orders.map((o) => [o.id, o]));
    const seen = { checkout: new Set<string>(), receipt: new Set<string>(), phone: new Set<string>() };
    items.forEach((item, index) => {
      const payment = payments.get(item.result.checkoutRequestId);
      const order = payment ? orderById.get(payment.order_id) : undefined;
      const outcome = toOutcome(item.result);
      const receipt = outcome.kind === 'paid' ? outcome.receipt : null;
      const phones = [outcome.kind === 'paid' ? outcome.phone : undefined, order?.msisdn].filter((p): p is string => !!p);
      const clashes = seen.checkout.has(item.result.checkoutRequestId) || (receipt !== null && seen.receipt.has(receipt)) || phones.some((p) => seen.phone.has(p));
      seen.checkout.add(item.result.checkoutRequestId);
      if (receipt) seen.receipt.add(receipt);
      phones.forEach((p) => seen.phone.add(p));
      if (clashes || outcome.kind !== 'paid' || !order || !payment) return;
      if (!AWAITING_STK_RESULT.includes(order.status) || !payment.reservation_pending) return;
      if (callbackShapeMismatch(outcome, payment) || receiptReuse(outcome, payment.receipt_used_by ?? undefined)) return;
      settled.push({ index, item, paid: outcome as Settling['paid'], order, payment });
    });
    if (settled.length === 0) return;
    await writeSettlements(trx, deps, settled);
  });
  // After COMMIT: the same metrics and log line as one by one.
  for (const s of settled) {
    answers[s.index] = 'settled';
    reportCallback(deps, s.item.result, { outcome: 'settled', alerts: [] });
  }
  return { answers, relayed };
}

/**
 * The payments of the locked orders, read AFTER the locks (a Query or expiry that settled one while we waited
 * shows), with whether the reservation is still pending and whether the callback's receipt is held by another
 * payment: what applyStkReport and callbackMismatch read one statement at a time.
 */
async function readPayments(trx: Knex.Transaction, orders: readonly Order[], items: readonly CallbackItem[]): Promise<Map<string, PaymentRow>> {
  const receiptOf = new Map<string, string | null>();
  for (const i of items) if (!receiptOf.has(i.result.checkoutRequestId)) receiptOf.set(i.result.checkoutRequestId, i.result.paid?.receipt ?? null);
  const { rows } = await trx.raw(
    `SELECT p.id, p.order_id, p.msisdn, p.amount_kes, p.checkout_request_id, p.mpesa_receipt, p.settled_by,
            (r.status IS NOT DISTINCT FROM 'pending' AND NOT EXISTS (SELECT 1 FROM transfers x WHERE x.pending_id = r.id)) AS reservation_pending,
            (SELECT u.id FROM stk_payments u WHERE u.mpesa_receipt = k.receipt AND u.id <> p.id LIMIT 1) AS receipt_used_by
       FROM unnest(?::uuid[], ?::text[]) AS k0(order_id, reservation_id)
       JOIN stk_payments p ON p.order_id = k0.order_id
       LEFT JOIN unnest(?::text[], ?::text[]) AS k(checkout_request_id, receipt) ON k.checkout_request_id = p.checkout_request_id
       LEFT JOIN transfers r ON r.id = k0.reservation_id`,
    [orders.map((o) => o.id), orders.map((o) => transferIds.buyReservation(o.id)), [...receiptOf.keys()], [...receiptOf.values()] as string[]],
  );
  const byCheckout = new Map<string, PaymentRow>();
  for (const row of rows as PaymentRow[]) if (row.checkout_request_id) byCheckout.set(row.checkout_request_id, row);
  return byCheckout;
}

/** pay() for every item, one statement per table. A count that does not add up throws: the batch rolls back. */
async function writeSettlements(trx: Knex.Transaction, deps: CallbackDeps, settled: readonly Settling[]): Promise<void> {
  const updated = await trx.raw(
    `UPDATE stk_payments p
        SET result_code = 0, result_desc = v.result_desc, callback_payload = v.payload, matched_by = 'checkout_id',
            settled_by = 'callback', settled_at = now(), mpesa_receipt = v.receipt, transaction_date = v.transaction_date
       FROM unnest(?::bigint[], ?::text[], ?::jsonb[], ?::text[], ?::text[]) AS v(id, result_desc, payload, receipt, transaction_date)
      WHERE p.id = v.id`,
    [
      settled.map((s) => s.payment.id),
      settled.map((s) => s.paid.resultDesc.slice(0, 300)),
      settled.map((s) => JSON.stringify(s.item.rawPayload ?? null)),
      settled.map((s) => s.paid.receipt),
      settled.map((s) => s.paid.transactionDate ?? null) as string[],
    ],
  );
  if (updated.rowCount !== settled.length) throw new Error(`stk batch: ${updated.rowCount} payments updated for ${settled.length} callbacks`);
  const moved = (await transitionOrders(trx, settled.map((s) => s.order.id), AWAITING_STK_RESULT, 'paid')).length;
  if (moved !== settled.length) throw new Error(`stk batch: ${moved} orders paid for ${settled.length} callbacks`);
  await trx('mpesa_callbacks').insert(
    settled.map((s) => ({ kind: 'stk', checkout_request_id: s.item.result.checkoutRequestId, outcome: 'settled', payload: JSON.stringify(s.item.rawPayload) })),
  );
  // The post last but the receipts (which quote the balance it returns): from here to COMMIT the pool row is locked
  // and every other reservation and settlement waits for it.
  const posted = await settleMany(trx, settled.map((s) => ({ pendingId: transferIds.buyReservation(s.order.id), how: 'posted' as const })));
  const balances = posted.map((p, i) => {
    // Checked pending under the order lock: anything else is a bug or a writer that skipped the lock. Never guess.
    if (p.result !== 'resolved') throw new Error(`stk batch: reservation of order ${settled[i]!.order.id} answered ${p.result}`);
    return p.creditPosted;
  });
  await queueSmsMany(trx, deps.outbox, settled.map((s, i) => receiptSms(s.order, s.paid.receipt, balances[i]!)));
}
