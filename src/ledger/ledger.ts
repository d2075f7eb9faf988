import type { Knex } from 'knex';

/**
 * Two-phase double-entry transfers (after TigerBeetle): a pending transfer reserves, and exactly one
 * resolution (post, void or expire) settles it. Every rule about moving gold lives in this file.
 *
 * Safety comes from the database, not from this code being careful:
 *  - the accounts_no_overdraft CHECK rejects the very UPDATE that would overdraw;
 *  - a transfer id is unique, so a retried reservation finds 'exists' instead of reserving twice;
 *  - a resolution row's pending_id is unique, so two racing callbacks cannot both post.
 */

export type Trx = Knex | Knex.Transaction;
export type Resolution = 'posted' | 'voided' | 'expired';

export class InsufficientFunds extends Error {
  constructor(readonly accountId: number) {
    super(`account ${accountId} has insufficient funds`);
    this.name = 'InsufficientFunds';
  }
}

export const SYSTEM_ACCOUNTS = { issuance: 'issuance', pool: 'pool' } as const;

export async function accountIdByCode(db: Trx, code: string): Promise<number> {
  const row = await db('accounts').where({ code }).first('id');
  if (!row) throw new Error(`no account with code ${code}`);
  return row.id;
}

export async function ensureCustomerAccount(db: Trx, customerId: number): Promise<number> {
  const code = `customer:${customerId}`;
  await db('accounts')
    .insert({ code, kind: 'customer', customer_id: customerId, must_not_overdraft: true })
    .onConflict('code')
    .ignore();
  return accountIdByCode(db, code);
}

interface NewTransfer {
  id: string;
  debitAccountId: number;
  creditAccountId: number;
  amount: number;
  reference: string;
  timeoutAt?: Date;
}

/** Reserve: moves `amount` into the pending columns. Idempotent on `id`. */
export async function createPendingTransfer(db: Trx, t: NewTransfer): Promise<'created' | 'exists'> {
  return insertTransfer(db, t, 'pending');
}

/** A single-phase transfer, posted at once (funding the pool from issuance). */
export async function createPostedTransfer(db: Trx, t: NewTransfer): Promise<'created' | 'exists'> {
  return insertTransfer(db, t, 'posted');
}

async function insertTransfer(db: Trx, t: NewTransfer, status: 'pending' | 'posted'): Promise<'created' | 'exists'> {
  assertAmount(t.amount);
  return inSavepoint(db, async (trx) => {
    const inserted = await trx('transfers')
      .insert({
        id: t.id,
        debit_account_id: t.debitAccountId,
        credit_account_id: t.creditAccountId,
        amount: t.amount,
        status,
        reference: t.reference,
        timeout_at: t.timeoutAt ?? null,
      })
      .onConflict('id')
      .ignore()
      .returning('id');
    if (inserted.length === 0) {
      const existing = await trx('transfers').where({ id: t.id }).first();
      if (existing.debit_account_id !== t.debitAccountId || existing.credit_account_id !== t.creditAccountId || existing.amount !== t.amount || existing.status !== status) {
        throw new Error(`transfer ${t.id} exists with different fields`);
      }
      return 'exists';
    }
    const side = status === 'pending' ? 'pending' : 'posted';
    await moveBalances(trx, t.debitAccountId, t.creditAccountId, {
      debit: { [`debits_${side}`]: t.amount },
      credit: { [`credits_${side}`]: t.amount },
    });
    return 'created';
  });
}

/**
 * Post, void or expire a reservation. Returns 'already_resolved' (with how) when someone else got
 * there first; nothing moves twice.
 */
export async function resolvePendingTransfer(
  db: Trx,
  pendingId: string,
  resolution: Resolution,
): Promise<{ result: 'resolved' } | { result: 'already_resolved'; as: Resolution }> {
  return inSavepoint(db, async (trx) => {
    const { rows } = await trx.raw(
      `INSERT INTO transfers (id, debit_account_id, credit_account_id, amount, status, pending_id, reference)
       SELECT ?, debit_account_id, credit_account_id, amount, ?, id, reference
         FROM transfers WHERE id = ? AND status = 'pending'
       ON CONFLICT DO NOTHING
       RETURNING debit_account_id, credit_account_id, amount`,
      [`${pendingId}/${resolution}`, resolution, pendingId],
    );
    const moved = rows[0] as { debit_account_id: number; credit_account_id: number; amount: number } | undefined;
    if (!moved) {
      const existing = await trx('transfers').where({ pending_id: pendingId }).first('status');
      if (!existing) throw new Error(`no pending transfer ${pendingId}`);
      return { result: 'already_resolved', as: existing.status as Resolution };
    }
    const a = moved.amount;
    await moveBalances(
      trx,
      moved.debit_account_id,
      moved.credit_account_id,
      resolution === 'posted'
        ? { debit: { debits_pending: -a, debits_posted: a }, credit: { credits_pending: -a, credits_posted: a } }
        : { debit: { debits_pending: -a }, credit: { credits_pending: -a } },
    );
    return { result: 'resolved' };
  });
}

type Deltas = Partial<Record<'debits_pending' | 'debits_posted' | 'credits_pending' | 'credits_posted', number>>;

/** Both account rows change in ascending id order, so concurrent transfers never deadlock. */
async function moveBalances(trx: Knex.Transaction, debitId: number, creditId: number, d: { debit: Deltas; credit: Deltas }) {
  const updates: Array<[number, Deltas]> = [[debitId, d.debit], [creditId, d.credit]];
  updates.sort((x, y) => x[0] - y[0]);
  for (const [accountId, deltas] of updates) {
    const set: Record<string, Knex.Raw> = {};
    for (const [column, delta] of Object.entries(deltas)) set[column] = trx.raw('?? + ?', [column, delta]);
    try {
      await trx('accounts').where({ id: accountId }).update(set);
    } catch (err) {
      if (isCheckViolation(err, 'accounts_no_overdraft')) throw new InsufficientFunds(accountId);
      throw err;
    }
  }
}

export interface AccountBalance {
  /** What can be spent or moved now: posted in, less posted out, less reserved out. */
  available: number;
  posted: number;
  pendingIn: number;
  pendingOut: number;
}

export async function accountBalance(db: Trx, accountId: number): Promise<AccountBalance> {
  const a = await db('accounts').where({ id: accountId }).first();
  if (!a) throw new Error(`no account ${accountId}`);
  const posted = a.credits_posted - a.debits_posted;
  return { available: posted - a.debits_pending, posted, pendingIn: a.credits_pending, pendingOut: a.debits_pending };
}

/**
 * The invariants, checked from scratch: debits equal credits, and every account's balance columns
 * equal what its transfers add up to. Returns the problems found (empty when the books balance).
 */
export async function checkBooks(db: Trx): Promise<string[]> {
  const problems: string[] = [];
  const totals = (
    await db.raw(`SELECT sum(debits_pending) dp, sum(credits_pending) cp, sum(debits_posted) dd, sum(credits_posted) cd FROM accounts`)
  ).rows[0];
  if (Number(totals.dp) !== Number(totals.cp)) problems.push(`pending debits ${totals.dp} != pending credits ${totals.cp}`);
  if (Number(totals.dd) !== Number(totals.cd)) problems.push(`posted debits ${totals.dd} != posted credits ${totals.cd}`);
  const drift = await db.raw(`
    WITH open_pending AS (
      SELECT p.* FROM transfers p WHERE p.status = 'pending' AND NOT EXISTS (SELECT 1 FROM transfers r WHERE r.pending_id = p.id)
    ), posted AS (SELECT * FROM transfers WHERE status = 'posted'),
    expected AS (
      SELECT a.id,
        coalesce((SELECT sum(amount) FROM open_pending WHERE debit_account_id = a.id), 0) dp,
        coalesce((SELECT sum(amount) FROM open_pending WHERE credit_account_id = a.id), 0) cp,
        coalesce((SELECT sum(amount) FROM posted WHERE debit_account_id = a.id), 0) dd,
        coalesce((SELECT sum(amount) FROM posted WHERE credit_account_id = a.id), 0) cd
      FROM accounts a)
    SELECT a.code FROM accounts a JOIN expected e ON e.id = a.id
     WHERE a.debits_pending <> e.dp OR a.credits_pending <> e.cp OR a.debits_posted <> e.dd OR a.credits_posted <> e.cd`);
  for (const row of drift.rows) problems.push(`account ${row.code} does not match its transfers`);
  const overdrawn = await db('accounts')
    .where('must_not_overdraft', true)
    .whereRaw('credits_posted - debits_posted - debits_pending < 0')
    .select('code');
  for (const row of overdrawn) problems.push(`account ${row.code} is overdrawn`);
  return problems;
}

function assertAmount(amount: number) {
  if (!Number.isSafeInteger(amount) || amount <= 0) throw new RangeError(`transfer amount must be a positive integer, got ${amount}`);
}

async function inSavepoint<T>(db: Trx, fn: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
  return db.transaction(fn);
}

function isCheckViolation(err: unknown, constraint: string): boolean {
  const e = err as { code?: string; constraint?: string };
  return e?.code === '23514' && e.constraint === constraint;
}
