import type { Db } from '../../db/knex';
import { Batcher } from '../../lib/batcher';
import type { Logger } from '../../lib/logger';
import { transitionOrders } from '../../orders/orders';

export interface PushBatchDeps {
  db: Db;
  log: Logger;
}

export type PushClaim = { state: 'claimed'; payment: { id: number; amount_kes: number } } | { state: 'accepted' | 'in_flight' | 'unknown' | 'settled' };

interface ClaimRow {
  id: string;
  status: string;
  payment_id: number | null;
  amount_kes: number;
  checkout_request_id: string | null;
  push_attempts: number;
  push_outcome: string | null;
}

/**
 * Takes the right to push for many buy jobs in ONE transaction, holding their order rows (locked in id
 * order, as every settlement and reconciliation takes them): an order still `reserved` is moved to
 * `stk_requested` first (recorded before Daraja hears of it), then the push is allowed only while no push
 * was accepted and every earlier attempt is known NOT to have reached Daraja. Each claimed attempt is
 * recorded `in_flight` and COMMITTED before any HTTP request, so a process killed during the call leaves
 * proof that the outcome is unknown: such an order is never pushed again.
 * A job repeated in the batch answers as if run right after the first: `in_flight` once the first claimed.
 */
export async function claimPushes(db: Db, orderIds: readonly string[]): Promise<PushClaim[]> {
  const unique = [...new Set(orderIds)];
  const answers = await db.transaction(async (trx) => {
    // Lock, THEN read the payments, in a second statement. One statement that joins the payments and waits for the
    // order locks would, once granted, re-read the orders but keep the payment rows from before the wait: a claim
    // queued behind another job's claim of the same order would see push_attempts 0 and push a second time.
    const locked: Array<{ id: string; status: string }> = (
      await trx.raw(`SELECT id, status FROM orders WHERE id = ANY(?::uuid[]) ORDER BY id FOR UPDATE`, [unique])
    ).rows;
    const payments: Array<Omit<ClaimRow, 'id' | 'status'> & { order_id: string }> = await trx('stk_payments')
      .whereRaw('order_id = ANY(?::uuid[])', [locked.map((r) => r.id)])
      .select('order_id', 'id as payment_id', 'amount_kes', 'checkout_request_id', 'push_attempts', 'push_outcome');
    const paymentOf = new Map(payments.map((p) => [p.order_id, p]));
    const rows: ClaimRow[] = locked.map((o) => {
      const p = paymentOf.get(o.id);
      return { id: o.id, status: o.status, payment_id: p?.payment_id ?? null, amount_kes: p?.amount_kes ?? 0, checkout_request_id: p?.checkout_request_id ?? null, push_attempts: p?.push_attempts ?? 0, push_outcome: p?.push_outcome ?? null };
    });
    const moved = new Set(await transitionOrders(trx, rows.filter((r) => r.status === 'reserved').map((r) => r.id), ['reserved'], 'stk_requested'));
    const byId = new Map(rows.map((r) => [r.id, r]));
    const out = new Map<string, PushClaim>();
    const claimed: number[] = [];
    for (const id of unique) {
      const r = byId.get(id);
      if (!r || (r.status !== 'stk_requested' && !moved.has(id)) || r.payment_id === null) out.set(id, { state: 'settled' });
      else if (r.checkout_request_id) out.set(id, { state: 'accepted' });
      else if (r.push_attempts > 0 && r.push_outcome !== 'not_delivered') out.set(id, { state: r.push_outcome === 'in_flight' ? 'in_flight' : 'unknown' });
      else {
        claimed.push(r.payment_id);
        out.set(id, { state: 'claimed', payment: { id: r.payment_id, amount_kes: r.amount_kes } });
      }
    }
    if (claimed.length > 0) {
      await trx('stk_payments')
        .whereRaw('id = ANY(?::bigint[])', [claimed])
        .update({ push_attempts: trx.raw('push_attempts + 1'), push_outcome: 'in_flight', push_started_at: trx.fn.now() });
    }
    return out;
  });
  const seen = new Set<string>();
  return orderIds.map((id) => {
    const a = answers.get(id)!;
    if (seen.has(id) && a.state === 'claimed') return { state: 'in_flight' };
    seen.add(id);
    return a;
  });
}

export interface AcceptedPush {
  orderId: string;
  paymentId: number;
  merchantRequestId: string;
  checkoutRequestId: string;
}

/**
 * Records many accepted pushes in ONE transaction: the orders locked first in id order (as settlements
 * lock them), each payment's Daraja ids stored whatever became of its order meanwhile (a callback must
 * find its payment by them), and the orders still `stk_requested` moved to `stk_sent` in one UPDATE.
 */
export async function recordAcceptedPushes(db: Db, pushes: readonly AcceptedPush[]): Promise<void[]> {
  await db.transaction(async (trx) => {
    await trx.raw(`SELECT id FROM orders WHERE id = ANY(?::uuid[]) ORDER BY id FOR UPDATE`, [pushes.map((p) => p.orderId)]);
    await trx.raw(
      `UPDATE stk_payments p
          SET merchant_request_id = v.m, checkout_request_id = v.c, accepted_at = now(), push_outcome = 'accepted', last_push_error = NULL
         FROM unnest(?::bigint[], ?::text[], ?::text[]) AS v(id, m, c)
        WHERE p.id = v.id`,
      [pushes.map((p) => p.paymentId), pushes.map((p) => p.merchantRequestId), pushes.map((p) => p.checkoutRequestId)],
    );
    await transitionOrders(trx, pushes.map((p) => p.orderId), ['stk_requested'], 'stk_sent');
  });
  return pushes.map(() => undefined);
}

/** Enough to cover a worker's concurrent buy jobs (BUY_WORKER_CONCURRENCY) in one batch. */
const MAX_BATCH = 256;

const batchers = new WeakMap<Db, { claim: Batcher<string, PushClaim>; record: Batcher<AcceptedPush, void> }>();

/** One pair of Batchers per database handle (one per service): the concurrent buy jobs of a worker share them. */
export function pushBatchersFor(deps: PushBatchDeps) {
  let b = batchers.get(deps.db);
  if (!b) {
    const onBatchError = (what: string) => (err: unknown, size: number) =>
      deps.log.warn({ err: (err as Error).message, size }, `${what} batch failed: running its items one by one`);
    b = {
      claim: new Batcher((ids) => claimPushes(deps.db, ids), { maxBatch: MAX_BATCH, onBatchError: onBatchError('stk push claim') }),
      record: new Batcher((pushes) => recordAcceptedPushes(deps.db, pushes), { maxBatch: MAX_BATCH, onBatchError: onBatchError('stk push record') }),
    };
    batchers.set(deps.db, b);
  }
  return b;
}
