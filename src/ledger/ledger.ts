import type { Knex } from 'knex';

/**
 * Two-phase double-entry transfers (after TigerBeetle): a pending transfer reserves, and exactly one
 * resolution (post, void or expire) settles it. This file is the SQL; the verbs use cases call
 * (reserve for a buy, hold for a sale, credit from the pool, release) and the transfer ids are in gold.ts.
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

export interface NewTransfer {
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
  const side = status === 'pending' ? 'pending' : 'posted';
  const insert = async (q: Trx) => {
    const { rows } = await q.raw(
      `WITH ins AS (
         INSERT INTO transfers (id, debit_account_id, credit_account_id, amount, status, reference, timeout_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO NOTHING
         RETURNING debit_account_id, credit_account_id, amount)
       ${moveBalancesSql([[`debits_${side}`, +1, 'debit'], [`credits_${side}`, +1, 'credit']])}`,
      [t.id, t.debitAccountId, t.creditAccountId, t.amount, status, t.reference, t.timeoutAt ?? null],
    );
    return rows[0] as Moved | undefined;
  };
  let moved: Moved | undefined;
  try {
    // Inside a caller's transaction, a savepoint keeps that transaction usable when the pool cannot cover it.
    moved = isTransaction(db) ? await db.transaction((sp) => insert(sp)) : await insert(db);
  } catch (err) {
    // Only the debit side grows, so only the debit account can hit the overdraft CHECK.
    if (isCheckViolation(err, 'accounts_no_overdraft')) throw new InsufficientFunds(t.debitAccountId);
    throw err;
  }
  if (moved) {
    assertMoved(moved, t.id);
    return 'created';
  }
  const existing = await db('transfers').where({ id: t.id }).first();
  if (existing.debit_account_id !== t.debitAccountId || existing.credit_account_id !== t.creditAccountId || existing.amount !== t.amount || existing.status !== status) {
    throw new Error(`transfer ${t.id} exists with different fields`);
  }
  return 'exists';
}

/**
 * Post, void or expire a reservation. Returns 'already_resolved' (with how) when someone else got
 * there first; nothing moves twice. A resolution cannot overdraw anything, so it needs no savepoint.
 * On success, also says which account was credited and its posted balance right after this move.
 */
export async function resolvePendingTransfer(
  db: Trx,
  pendingId: string,
  resolution: Resolution,
): Promise<{ result: 'resolved'; creditAccountId: number; creditPosted: number } | { result: 'already_resolved'; as: Resolution }> {
  const { rows } = await db.raw(
    `WITH ins AS (
       INSERT INTO transfers (id, debit_account_id, credit_account_id, amount, status, pending_id, reference)
       SELECT ?, debit_account_id, credit_account_id, amount, ?, id, reference
         FROM transfers WHERE id = ? AND status = 'pending'
       ON CONFLICT DO NOTHING
       RETURNING debit_account_id, credit_account_id, amount)
     ${moveBalancesSql(
       resolution === 'posted'
         ? [['debits_pending', -1, 'debit'], ['debits_posted', +1, 'debit'], ['credits_pending', -1, 'credit'], ['credits_posted', +1, 'credit']]
         : [['debits_pending', -1, 'debit'], ['credits_pending', -1, 'credit']],
     )}`,
    [`${pendingId}/${resolution}`, resolution, pendingId],
  );
  const moved = rows[0] as Moved | undefined;
  if (!moved) {
    const existing = await db('transfers').where({ pending_id: pendingId }).first('status');
    if (!existing) throw new Error(`no pending transfer ${pendingId}`);
    return { result: 'already_resolved', as: existing.status as Resolution };
  }
  assertMoved(moved, pendingId);
  return { result: 'resolved', creditAccountId: moved.credit_account_id, creditPosted: moved.credit_posted };
}

/** What a batch did with each transfer, in input order. `insufficient`: the debit account could not cover it; nothing moved. */
export type CreateOutcome = 'created' | 'exists' | 'insufficient';

/**
 * Many transfers in ONE statement (the SQL function of migration 017): every account locked once, lowest id
 * first; overdraft decided item by item, in input order; each account row updated once with the sums. The
 * batched twin of createPendingTransfer / createPostedTransfer: the same rows, the same balances (pinned by
 * test/property/ledger-batch.test.ts). A transfer id that exists with other fields throws, like the single one.
 */
export async function createTransfers(db: Trx, items: readonly NewTransfer[], status: 'pending' | 'posted'): Promise<CreateOutcome[]> {
  if (items.length === 0) return [];
  for (const t of items) assertAmount(t.amount);
  const { rows } = await db.raw(`SELECT ledger_create_transfers(?::text[], ?::bigint[], ?::bigint[], ?::bigint[], ?::text[], ?::timestamptz[], ?) AS r`, [...transferArrays(items), status]);
  const results = rows[0].r as Array<CreateOutcome | 'conflict'>;
  const clash = results.indexOf('conflict');
  if (clash >= 0) throw new Error(`transfer ${items[clash]!.id} exists with different fields`);
  return results as CreateOutcome[];
}

export type ResolveOutcome =
  | { result: 'resolved'; creditAccountId: number; creditPosted: number }
  | { result: 'already_resolved'; as: Resolution }
  /** No pending transfer with that id (resolvePendingTransfer throws for it; a batch answers per item). */
  | { result: 'missing' };

/**
 * Many resolutions in ONE statement: the batched twin of resolvePendingTransfer (same rows, same answers,
 * creditPosted as it stood right after each item, in input order). A second resolution of the same reservation,
 * in the table or earlier in the batch, is `already_resolved`.
 */
export async function resolvePendingTransfers(db: Trx, items: ReadonlyArray<{ pendingId: string; resolution: Resolution }>): Promise<ResolveOutcome[]> {
  if (items.length === 0) return [];
  const { rows } = await db.raw(`SELECT * FROM ledger_resolve_transfers(?::text[], ?::text[])`, [items.map((i) => i.pendingId), items.map((i) => i.resolution)]);
  return (rows as Array<{ o_result: string; o_as: Resolution | null; o_credit_account_id: string | null; o_credit_posted: string | null }>).map(resolveOutcome);
}

/**
 * Reservations and resolutions in ONE statement and commit (ledger_apply): all their accounts locked first, in
 * id order; then the reservations, then the resolutions, each as createTransfers / resolvePendingTransfers would.
 */
export async function applyTransfers(
  db: Trx,
  reservations: readonly NewTransfer[],
  resolutions: ReadonlyArray<{ pendingId: string; resolution: Resolution }>,
): Promise<{ created: CreateOutcome[]; resolved: ResolveOutcome[] }> {
  const { rows } = await db.raw(applySql('?'), applyArgs(reservations, resolutions));
  return applied(rows[0]);
}

/** A node-postgres connection, as `db.client.acquireConnection()` hands it out. */
export interface PgConnection {
  query(query: { name: string; text: string; values: unknown[] }): Promise<{ rows: unknown[] }>;
}

/**
 * applyTransfers on a node-postgres connection, as one autocommit statement: the LedgerBatcher's statement without
 * knex's own work per query (about 0.05 ms of a 1 ms batch). The same SQL and the same answers. A named statement:
 * each connection parses and plans the call once, not once per batch.
 */
export async function applyTransfersOn(
  conn: PgConnection,
  reservations: readonly NewTransfer[],
  resolutions: ReadonlyArray<{ pendingId: string; resolution: Resolution }>,
): Promise<{ created: CreateOutcome[]; resolved: ResolveOutcome[] }> {
  const { rows } = await conn.query({ name: 'ledger_apply', text: APPLY_ON_SQL, values: applyArgs(reservations, resolutions) });
  return applied(rows[0]);
}

const APPLY_TYPES = ['text[]', 'bigint[]', 'bigint[]', 'bigint[]', 'text[]', 'timestamptz[]', 'text[]', 'text[]'];
const applySql = (style: '?' | '$') => `SELECT * FROM ledger_apply(${APPLY_TYPES.map((t, i) => `${style === '?' ? '?' : `$${i + 1}`}::${t}`).join(', ')})`;
const APPLY_ON_SQL = applySql('$');

function applyArgs(reservations: readonly NewTransfer[], resolutions: ReadonlyArray<{ pendingId: string; resolution: Resolution }>) {
  for (const t of reservations) assertAmount(t.amount);
  return [...transferArrays(reservations), resolutions.map((i) => i.pendingId), resolutions.map((i) => i.resolution)];
}

// A transfer id that exists with other fields makes ledger_apply RAISE: nothing of the batch is applied.
function applied(row: unknown): { created: CreateOutcome[]; resolved: ResolveOutcome[] } {
  const r = row as { created: CreateOutcome[]; r_result: string[] | null; r_as: Array<Resolution | null> | null; r_credit: Array<string | null> | null; r_posted: Array<string | null> | null };
  const resolved = (r.r_result ?? []).map((result, i) => resolveOutcome({ o_result: result, o_as: r.r_as![i]!, o_credit_account_id: r.r_credit![i]!, o_credit_posted: r.r_posted![i]! }));
  return { created: r.created, resolved };
}

function transferArrays(items: readonly NewTransfer[]) {
  return [
    items.map((t) => t.id),
    items.map((t) => t.debitAccountId),
    items.map((t) => t.creditAccountId),
    items.map((t) => t.amount),
    items.map((t) => t.reference),
    items.map((t) => t.timeoutAt?.toISOString() ?? null) as string[],
  ];
}

function resolveOutcome(r: { o_result: string; o_as: Resolution | null; o_credit_account_id: string | number | null; o_credit_posted: string | number | null }): ResolveOutcome {
  if (r.o_result === 'resolved') return { result: 'resolved', creditAccountId: Number(r.o_credit_account_id), creditPosted: Number(r.o_credit_posted) };
  if (r.o_result === 'already_resolved') return { result: 'already_resolved', as: r.o_as! };
  return { result: 'missing' };
}

type BalanceColumn = 'debits_pending' | 'debits_posted' | 'credits_pending' | 'credits_posted';
interface Moved {
  debit_account_id: number;
  credit_account_id: number;
  amount: number;
  rows_moved: number;
  credit_posted: number;
}

/**
 * The rest of a one-statement transfer, after a CTE `ins` that inserted the transfer row (and returned its
 * accounts and amount, or nothing when the transfer existed already). Both account rows change in the same
 * statement, the lower id first: `hi` joins `lo`, so the higher row is only updated (and locked) once the lower
 * one is, and every transfer takes its two row locks in ascending id order, so concurrent transfers never
 * deadlock. Each row is locked from this statement to COMMIT, and nothing else runs in between when the caller
 * has no transaction of its own. The overdraft CHECK still judges the very UPDATE.
 */
function moveBalancesSql(changes: Array<[BalanceColumn, 1 | -1, 'debit' | 'credit']>): string {
  const set = changes
    .map(([column, sign, side]) => `${column} = a.${column} ${sign > 0 ? '+' : '-'} CASE WHEN a.id = ins.${side}_account_id THEN ins.amount ELSE 0 END`)
    .join(', ');
  return `, lo AS (
       UPDATE accounts a SET ${set} FROM ins WHERE a.id = LEAST(ins.debit_account_id, ins.credit_account_id)
       RETURNING a.id, a.credits_posted - a.debits_posted AS posted),
     hi AS (
       UPDATE accounts a SET ${set} FROM ins, lo WHERE a.id = GREATEST(ins.debit_account_id, ins.credit_account_id)
       RETURNING a.id, a.credits_posted - a.debits_posted AS posted)
     SELECT ins.debit_account_id, ins.credit_account_id, ins.amount,
            (SELECT count(*) FROM lo)::int + (SELECT count(*) FROM hi)::int AS rows_moved,
            (SELECT posted FROM (SELECT * FROM lo UNION ALL SELECT * FROM hi) m WHERE m.id = ins.credit_account_id LIMIT 1) AS credit_posted
       FROM ins`;
}

function assertMoved(moved: Moved, id: string) {
  if (moved.rows_moved !== 2) throw new Error(`transfer ${id}: ${moved.rows_moved} account rows moved instead of 2`);
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

function isTransaction(db: Trx): db is Knex.Transaction {
  return (db as Knex.Transaction).isTransaction === true;
}

function isCheckViolation(err: unknown, constraint: string): boolean {
  const e = err as { code?: string; constraint?: string };
  return e?.code === '23514' && e.constraint === constraint;
}
