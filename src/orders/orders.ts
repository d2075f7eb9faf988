import type { Knex } from 'knex';
import type { Trx } from '../ledger/ledger';
import { canMove, IllegalOrderMove, type OrderStatus } from './order-states';

/** What placing an order takes, buy or sell: who, how much, and the quote the customer was shown. */
export interface OrderRequest {
  customerId: number;
  msisdn: string;
  /** Whole KES: paid in (buy) or paid out on M-Pesa (sell). */
  amountKes: number;
  /** The quoted price (cents per gram), locked into the order. */
  priceCentsPerGram: number;
  /** Gold bought (rounded down) or given up (rounded up, at least microgramsForPayout): the house's favour either way. */
  gramsUg: number;
  /** Where the request came from (e.g. `ussd:<msisdn>:<sessionId>`): the same source places one order. */
  sourceKey: string;
}

/** A buy or a sale, with its customer's language (for the SMS it may queue). */
export interface Order {
  id: string;
  kind: 'buy' | 'sell';
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

/** `lock`: FOR UPDATE of the order row, held until the caller's transaction ends (every settlement takes it first). */
export async function loadOrder(db: Trx, id: string, opts: { lock?: boolean } = {}): Promise<Order | undefined> {
  const q = db('orders')
    .join('customers', 'customers.id', 'orders.customer_id')
    .where('orders.id', id)
    .first('orders.*', 'customers.language');
  return opts.lock ? q.forUpdate('orders') : q;
}

/**
 * Lock, then read: the order owning a payment or payout row, found and locked FOR UPDATE in one
 * statement. Whatever the caller reads of that row next is read under the lock, so it already shows
 * what another reporter settled before the lock was granted: no read-lock-read-again.
 */
export async function lockOrderOf(trx: Knex.Transaction, owner: 'stk_payments' | 'payouts', where: Record<string, string | number>): Promise<Order | undefined> {
  return trx('orders')
    .join('customers', 'customers.id', 'orders.customer_id')
    .whereIn('orders.id', trx(owner).select('order_id').where(where))
    .first('orders.*', 'customers.language')
    .forUpdate('orders');
}

/**
 * lockOrderOf for many rows of the owner table at once (`column = ANY(values)`), in ONE statement: the orders are
 * locked in id order, so two batches, or a batch and a one-order settlement, never wait for each other in a cycle.
 * Read the owner rows AFTER this (a second statement): they then show whatever was committed before the locks.
 */
export async function lockOrdersOf(trx: Knex.Transaction, owner: 'stk_payments', column: 'checkout_request_id', values: readonly string[]): Promise<Order[]> {
  if (values.length === 0) return [];
  return trx('orders')
    .join('customers', 'customers.id', 'orders.customer_id')
    .whereIn('orders.id', trx(owner).select('order_id').whereRaw('?? = ANY(?::text[])', [column, values as string[]]))
    .select('orders.*', 'customers.language')
    .orderBy('orders.id')
    .forUpdate('orders');
}

/**
 * Every order transition is a conditional UPDATE: it happens only from the expected states, and
 * 0 rows means someone else already moved the order, so the caller stops. A move that the table in
 * order-states.ts does not allow throws before anything is written.
 */
export async function transitionOrder(
  db: Trx,
  id: string,
  from: readonly OrderStatus[],
  to: OrderStatus,
  extra: Record<string, unknown> = {},
): Promise<boolean> {
  if (from.length === 0 || !from.every((f) => canMove(f, to))) throw new IllegalOrderMove(from, to);
  const n = await db('orders').where({ id }).whereIn('status', from).update({ status: to, updated_at: db.fn.now(), ...extra });
  return n === 1;
}

/**
 * The set-based twin of transitionOrder: many orders, one conditional UPDATE. Returns the ids that moved
 * (those still in `from`); the rest were moved by someone else. The same table of moves applies.
 */
export async function transitionOrders(db: Trx, ids: readonly string[], from: readonly OrderStatus[], to: OrderStatus): Promise<string[]> {
  if (from.length === 0 || !from.every((f) => canMove(f, to))) throw new IllegalOrderMove(from, to);
  if (ids.length === 0) return [];
  const rows: Array<{ id: string }> = await db('orders')
    .whereRaw('id = ANY(?::uuid[])', [ids as string[]])
    .whereIn('status', from)
    .update({ status: to, updated_at: db.fn.now() })
    .returning('id');
  return rows.map((r) => r.id);
}
