import type { Knex } from 'knex';
import {
  accountIdByCode,
  createPendingTransfer,
  createTransfers,
  resolvePendingTransfers,
  ensureCustomerAccount,
  InsufficientFunds,
  resolvePendingTransfer,
  SYSTEM_ACCOUNTS,
  type Resolution,
  type Trx,
} from './ledger';

/**
 * The verbs of gold: every way the service moves gold, on top of the two-phase transfers in ledger.ts.
 * Use cases say "reserve for this buy", "hold for this sale", "credit from the pool"; the accounts,
 * the direction and the transfer ids are decided here and nowhere else.
 */

/** Transfer ids, one pattern each. An id is unique, so each of these moves can happen once per order. */
export const transferIds = {
  /** A buy's reservation, pool -> customer (also a Paybill payment's credit, reserved and posted at once). */
  buyReservation: (orderId: string) => `buy-${orderId}`,
  /** A buy paid after its reservation was released (late payment, or paid while released). */
  lateCredit: (orderId: string) => `buy-${orderId}-late`,
  /** An operator's credit of a buy in review whose reservation was released or never made. */
  reviewCredit: (orderId: string) => `review-credit-${orderId}`,
  /** A sale's held gold, customer -> pool. */
  sale: (orderId: string) => `sell-${orderId}`,
  /** The resolution row of a pending transfer. */
  resolution: (pendingId: string, how: Resolution) => `${pendingId}/${how}`,
};

interface Move {
  id: string;
  customerId: number;
  gramsUg: number;
  reference: string;
}

/** Pending pool -> customer: gold set aside for a buy until M-Pesa answers. Throws InsufficientFunds. */
export async function reserveFromPool(trx: Knex.Transaction, m: Move): Promise<void> {
  await createPendingTransfer(trx, {
    id: m.id,
    debitAccountId: await accountIdByCode(trx, SYSTEM_ACCOUNTS.pool),
    creditAccountId: await ensureCustomerAccount(trx, m.customerId),
    amount: m.gramsUg,
    reference: m.reference,
  });
}

/** Pending customer -> pool: a seller's gold held until the payout settles. Throws InsufficientFunds. */
export async function holdForSale(trx: Knex.Transaction, m: Move & { customerAccountId: number }): Promise<void> {
  await createPendingTransfer(trx, {
    id: m.id,
    debitAccountId: m.customerAccountId,
    creditAccountId: await accountIdByCode(trx, SYSTEM_ACCOUNTS.pool),
    amount: m.gramsUg,
    reference: m.reference,
  });
}

/**
 * Batched reserveFromPool: many buys' reservations in one statement (their customer accounts ensured in
 * one more). Answers in input order; `insufficient` for a buy the pool could not cover once the ones before it
 * in the batch were reserved (nothing moved for it, the others stand).
 */
export async function reserveManyFromPool(trx: Trx, moves: readonly Move[]): Promise<Array<'reserved' | 'exists' | 'insufficient'>> {
  if (moves.length === 0) return [];
  const customerIds = [...new Set(moves.map((m) => m.customerId))];
  await trx.raw(
    `INSERT INTO accounts (code, kind, customer_id, must_not_overdraft)
     SELECT 'customer:' || c, 'customer', c, true FROM unnest(?::bigint[]) c ON CONFLICT (code) DO NOTHING`,
    [customerIds],
  );
  const rows: Array<{ id: number; customer_id: number | null; code: string }> = await trx('accounts')
    .whereIn('customer_id', customerIds)
    .orWhere({ code: SYSTEM_ACCOUNTS.pool })
    .select('id', 'customer_id', 'code');
  const pool = rows.find((r) => r.code === SYSTEM_ACCOUNTS.pool)!.id;
  const accountOf = new Map(rows.filter((r) => r.customer_id !== null).map((r) => [Number(r.customer_id), r.id]));
  const results = await createTransfers(
    trx,
    moves.map((m) => ({ id: m.id, debitAccountId: pool, creditAccountId: accountOf.get(m.customerId)!, amount: m.gramsUg, reference: m.reference })),
    'pending',
  );
  return results.map((r) => (r === 'created' ? 'reserved' : r));
}

/** Batched settle: many resolutions in one statement, answers in input order (`missing`: no such reservation). */
export function settleMany(trx: Trx, items: ReadonlyArray<{ pendingId: string; how: Resolution }>) {
  return resolvePendingTransfers(trx, items.map((i) => ({ pendingId: i.pendingId, resolution: i.how })));
}

/** Settles a pending transfer (post, void, expire); the ledger's answer is returned, never dropped. */
export function settle(trx: Trx, pendingId: string, how: Resolution) {
  return resolvePendingTransfer(trx, pendingId, how);
}

/**
 * Gives reserved or held gold back (void, or expire). A reservation never made (`none`) or already
 * released needs nothing. One already POSTED throws, so the caller's transaction rolls back: failing an
 * order must never take back gold that has moved.
 */
export async function release(trx: Knex.Transaction, pendingId: string, how: 'voided' | 'expired'): Promise<'released' | 'already_released' | 'none'> {
  const state = await reservationState(trx, pendingId);
  if (state === 'none') return 'none';
  if (state === 'posted') throw new Error(`transfer ${pendingId} was already posted: it cannot be ${how}`);
  if (state !== 'pending') return 'already_released';
  const moved = await resolvePendingTransfer(trx, pendingId, how);
  if (moved.result === 'already_resolved' && moved.as === 'posted') throw new Error(`transfer ${pendingId} was already posted: it cannot be ${how}`);
  return moved.result === 'resolved' ? 'released' : 'already_released';
}

/**
 * Money already received, turned into gold at once: reserve pool -> customer under `id`, then post,
 * in a savepoint of the caller's transaction, so a pool that cannot cover it leaves that transaction
 * usable: `pool_insufficient`, and nothing moved. Idempotent on `id`. Returns the customer's posted
 * gold right after the post. Used by late STK payments, Paybill payments and operators' credits.
 */
export async function creditFromPool(trx: Knex.Transaction, m: Move): Promise<{ ok: true; balanceUg: number } | { ok: false; reason: 'pool_insufficient' }> {
  try {
    return await trx.transaction(async (sp) => {
      await reserveFromPool(sp, m);
      const posted = await resolvePendingTransfer(sp, m.id, 'posted');
      if (posted.result === 'resolved') return { ok: true as const, balanceUg: posted.creditPosted };
      return { ok: true as const, balanceUg: await postedGold(sp, m.customerId) };
    });
  } catch (err) {
    if (err instanceof InsufficientFunds) return { ok: false, reason: 'pool_insufficient' };
    throw err;
  }
}

/** A customer's posted gold (credits - debits), 0 without an account. */
export async function postedGold(db: Trx, customerId: number): Promise<number> {
  const row = await db('accounts').where({ customer_id: customerId }).first('credits_posted', 'debits_posted');
  return row ? Number(row.credits_posted) - Number(row.debits_posted) : 0;
}

export type ReservationState = 'none' | 'pending' | Resolution;

/** Where a pending transfer stands: never made, still pending, or how it was resolved. */
export async function reservationState(db: Trx, pendingId: string): Promise<ReservationState> {
  const rows: Array<{ id: string; pending_id: string | null; status: string }> = await db('transfers')
    .where({ id: pendingId })
    .orWhere({ pending_id: pendingId })
    .select('id', 'pending_id', 'status');
  if (!rows.some((r) => r.id === pendingId)) return 'none';
  const resolution = rows.find((r) => r.pending_id === pendingId);
  return resolution ? (resolution.status as Resolution) : 'pending';
}
