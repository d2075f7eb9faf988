import type { Knex } from 'knex';
import { CENTS_PER_KES } from '../lib/units';
import { NOT_COUNTED_FOR_LIMITS } from './order-states';

export type OrderKind = 'buy' | 'sell';

export type DailyLimitCheck = { ok: true } | { ok: false; remainingKes: number };


/**
 * Per-customer limit on what one kind of order adds up to in a Nairobi calendar day (UTC+3 all year).
 * Call it inside the transaction that then inserts the order: it takes the customer's row lock, so two
 * orders placed at the same moment are decided one after the other and cannot pass the limit together.
 * FOR NO KEY UPDATE rather than FOR UPDATE: it does not wait for transactions that merely reference
 * the customer (an SMS row, an order insert), which could otherwise deadlock with the ledger's locks.
 *
 * A request already recorded under `sourceKey` passes: its repeat must find its order, not a refusal.
 */
export async function checkDailyLimit(
  trx: Knex.Transaction,
  kind: OrderKind,
  request: { customerId: number; sourceKey: string; amountKes: number },
  limitKes: number,
): Promise<DailyLimitCheck> {
  const p = { ...request, kind, limitKes };
  await trx.raw('SELECT id FROM customers WHERE id = ? FOR NO KEY UPDATE', [p.customerId]);
  const repeat = await trx('orders').where({ source_key: p.sourceKey }).first('id');
  if (repeat) return { ok: true };
  const usedCents = await spentToday(trx, p.customerId, p.kind);
  const remainingCents = Math.max(0, p.limitKes * CENTS_PER_KES - usedCents);
  if (p.amountKes * CENTS_PER_KES <= remainingCents) return { ok: true };
  return { ok: false, remainingKes: Math.floor(remainingCents / CENTS_PER_KES) };
}

/** KES cents of today's (Nairobi) counted orders of `kind`, by the database's clock (the one created_at uses). */
export async function spentToday(db: Knex | Knex.Transaction, customerId: number, kind: OrderKind): Promise<number> {
  const { rows } = await db.raw(
    `SELECT coalesce(sum(amount_cents), 0)::bigint AS cents
       FROM orders
      WHERE customer_id = ? AND kind = ? AND status <> ALL(?)
        AND created_at >= (date_trunc('day', (now() AT TIME ZONE 'UTC') + interval '3 hours') - interval '3 hours') AT TIME ZONE 'UTC'`,
    [customerId, kind, [...NOT_COUNTED_FOR_LIMITS]],
  );
  return Number(rows[0].cents);
}
