import type { Knex } from 'knex';
import type { Db } from '../../db/knex';
import type { Outbox } from '../../infra/outbox';
import { transferIds } from '../../ledger/gold';
import { createTransfers, ensureCustomerAccount, SYSTEM_ACCOUNTS } from '../../ledger/ledger';
import { Batcher } from '../../lib/batcher';
import type { Logger } from '../../lib/logger';
import { transitionOrders, type Order } from '../../orders/orders';
import { failBuyOrder } from './buy-outcomes';

export interface ReserveDeps {
  db: Db;
  outbox: Outbox;
  log: Logger;
}

/**
 * What the reservation step tells one buy job:
 * - `unknown_order`: no such order (the job logs and stops);
 * - `pool_empty`: the pool could not cover it, so the order was failed and the customer's SMS queued (the job stops);
 * - `go_on`: reserved now, or earlier, or no longer `created` (the later steps decide what is left to do).
 */
export type ReserveAnswer = { outcome: 'unknown_order' } | { outcome: 'pool_empty'; order: Order } | { outcome: 'go_on'; order: Order };

type LockedRow = Order & { customer_account_id: number | null; pool_account_id: number };

/**
 * The reservation step of many buy jobs in ONE transaction (before issue 11: one transaction and 6 statements
 * per job). The batch's orders are locked in id order (the order every settlement takes a lock in, so two
 * batches or a batch and a callback cannot deadlock); only those still `created` are reserved, all in one
 * ledger statement, answered item by item in the order the jobs asked (so a short pool refuses the same
 * orders one-by-one jobs would have refused); the reserved ones move to `reserved` in one UPDATE. An
 * order the pool cannot cover is failed exactly as a single job failed it (failBuyOrder: SMS and all).
 * Everything commits before any STK push: a push never goes out for gold that is not set aside.
 * All or nothing, as Batcher needs: a throw rolls the whole batch back and the Batcher re-runs it job by job.
 */
export async function reserveBuyOrders(deps: ReserveDeps, orderIds: readonly string[]): Promise<ReserveAnswer[]> {
  const unique = [...new Set(orderIds)];
  const answers = await deps.outbox.transaction(async (trx) => {
    // The customer's ledger account and the pool's are read with the lock: no lookup statement per batch.
    const rows: LockedRow[] = await trx('orders')
      .join('customers', 'customers.id', 'orders.customer_id')
      .whereRaw('orders.id = ANY(?::uuid[])', [unique])
      .orderBy('orders.id')
      .forUpdate('orders')
      .select(
        'orders.*',
        'customers.language',
        trx.raw(`(SELECT a.id FROM accounts a WHERE a.code = 'customer:' || orders.customer_id) AS customer_account_id`),
        trx.raw(`(SELECT p.id FROM accounts p WHERE p.code = ?) AS pool_account_id`, [SYSTEM_ACCOUNTS.pool]),
      );
    const byId = new Map(rows.map((r) => [r.id, r]));
    const out = new Map<string, ReserveAnswer>();
    const toReserve: LockedRow[] = [];
    for (const id of unique) {
      const row = byId.get(id);
      if (!row) out.set(id, { outcome: 'unknown_order' });
      else if (row.status !== 'created') out.set(id, { outcome: 'go_on', order: asOrder(row) });
      else toReserve.push(row);
    }
    await openMissingAccounts(trx, toReserve);
    const results = await createTransfers(
      trx,
      toReserve.map((o) => ({
        id: transferIds.buyReservation(o.id),
        debitAccountId: o.pool_account_id,
        creditAccountId: o.customer_account_id!,
        amount: Number(o.grams_ug),
        reference: o.reference,
      })),
      'pending',
    );
    const reserved = toReserve.filter((_, i) => results[i] !== 'insufficient');
    await transitionOrders(trx, reserved.map((o) => o.id), ['created'], 'reserved');
    for (const o of reserved) out.set(o.id, { outcome: 'go_on', order: asOrder(o) });
    for (const [i, o] of toReserve.entries()) {
      if (results[i] !== 'insufficient') continue;
      deps.log.warn({ orderId: o.id }, 'pool cannot cover the order');
      const order = asOrder(o);
      await failBuyOrder(trx, deps.outbox, order, ['created'], { code: 'pool_empty', description: 'gold pool cannot cover the order', reason: 'poolEmpty' });
      out.set(o.id, { outcome: 'pool_empty', order });
    }
    return out;
  });
  // A job repeated in the same batch answers as it would have run right after the first: the order is no
  // longer `created`, so it goes on (and finds nothing left to do), even after the first failed the order.
  const seen = new Set<string>();
  return orderIds.map((id) => {
    const a = answers.get(id)!;
    if (seen.has(id) && a.outcome === 'pool_empty') return { outcome: 'go_on', order: { ...a.order, status: 'failed' } };
    seen.add(id);
    return a;
  });
}

/**
 * A customer's ledger account is opened by their first buy: one statement for all the batch's first buys. One
 * that a concurrent transaction opened meanwhile is not returned by the insert: looked up (rare).
 */
async function openMissingAccounts(trx: Knex.Transaction, rows: LockedRow[]): Promise<void> {
  const missing = [...new Set(rows.filter((r) => r.customer_account_id === null).map((r) => Number(r.customer_id)))];
  if (missing.length === 0) return;
  const opened: Array<{ id: number; customer_id: number }> = (
    await trx.raw(
      `INSERT INTO accounts (code, kind, customer_id, must_not_overdraft)
       SELECT 'customer:' || c, 'customer', c, true FROM unnest(?::bigint[]) c ON CONFLICT (code) DO NOTHING RETURNING id, customer_id`,
      [missing],
    )
  ).rows;
  const idOf = new Map(opened.map((a) => [Number(a.customer_id), a.id]));
  for (const r of rows) {
    if (r.customer_account_id !== null) continue;
    r.customer_account_id = idOf.get(Number(r.customer_id)) ?? (await ensureCustomerAccount(trx, r.customer_id));
  }
}

function asOrder(row: LockedRow): Order {
  const { customer_account_id: _a, pool_account_id: _p, ...order } = row;
  return order;
}

/** Enough to cover a worker's concurrent buy jobs (BUY_WORKER_CONCURRENCY) in one batch. */
const MAX_BATCH = 256;

const batchers = new WeakMap<Outbox, Batcher<string, ReserveAnswer>>();

/**
 * One Batcher per service (keyed by its outbox): the concurrent buy jobs of one worker process share it, so
 * their reservations group-commit. Tests with their own services get their own.
 */
export function reserveBatcherFor(deps: ReserveDeps): Batcher<string, ReserveAnswer> {
  let b = batchers.get(deps.outbox);
  if (!b) {
    b = new Batcher((ids) => reserveBuyOrders(deps, ids), {
      maxBatch: MAX_BATCH,
      onBatchError: (err, size) => deps.log.warn({ err: (err as Error).message, size }, 'buy reservation batch failed: reserving its orders one by one'),
    });
    batchers.set(deps.outbox, b);
  }
  return b;
}
