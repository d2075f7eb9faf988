import type { Knex } from 'knex';
import { NOT_COUNTED_FOR_LIMITS } from './order-states';

export type OrderKind = 'buy' | 'sell';

export type DailyLimitCheck = { ok: true } | { ok: false; remainingKes: number };

/**
 * Per-customer limit on what one kind of order adds up to in a Nairobi calendar day (UTC+3 all year). The rule's one
 * home is the SQL function check_daily_limit (migration 20261205_021_daily_limit_rule), which the buy confirm
 * (place_buy_order) calls too. Call this inside the transaction that then inserts the order: it takes the customer's
 * row lock, so two orders placed at the same moment are decided one after the other and cannot pass the limit
 * together. FOR NO KEY UPDATE rather than FOR UPDATE: it does not wait for transactions that merely reference the
 * customer (an SMS row, an order insert), which could otherwise deadlock with the ledger's locks.
 *
 * A request already recorded under `sourceKey` passes: its repeat must find its order, not a refusal.
 */
export async function checkDailyLimit(
  trx: Knex.Transaction,
  kind: OrderKind,
  request: { customerId: number; sourceKey: string; amountCents: number },
  limitKes: number,
): Promise<DailyLimitCheck> {
  const { rows } = await trx.raw(`SELECT check_daily_limit(?, ?, ?, ?, ?, ?::text[]) AS remaining_kes`, [
    request.customerId,
    kind,
    request.sourceKey,
    request.amountCents,
    limitKes,
    [...NOT_COUNTED_FOR_LIMITS],
  ]);
  const remaining = rows[0].remaining_kes;
  return remaining === null ? { ok: true } : { ok: false, remainingKes: Number(remaining) };
}
