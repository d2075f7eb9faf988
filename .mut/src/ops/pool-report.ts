import type { Db } from '../db/knex';
import { checkBooks, SYSTEM_ACCOUNTS } from '../ledger/ledger';
import { formatGrams } from '../lib/units';

export interface PoolReport {
  pool: { availableUg: number; pendingUg: number; postedUg: number; available: string; pending: string; posted: string };
  issued: { postedUg: number; posted: string };
  /** checkBooks from scratch: debits = credits, every balance equals its transfers, nothing overdrawn. */
  books: { balanced: boolean; problems: string[] };
}

/**
 * The pool as an operator sees it: posted gold, what is reserved for buyers awaiting M-Pesa
 * (pending), what can still be sold (available), and the books check. Grams are strings with 4
 * decimals, truncated (formatGrams); the µg integers are exact.
 */
export async function poolReport(db: Db): Promise<PoolReport> {
  const rows: Array<{ code: string; debits_pending: number; debits_posted: number; credits_posted: number }> = await db('accounts')
    .whereIn('code', [SYSTEM_ACCOUNTS.pool, SYSTEM_ACCOUNTS.issuance])
    .select('code', 'debits_pending', 'debits_posted', 'credits_posted');
  const pool = rows.find((r) => r.code === SYSTEM_ACCOUNTS.pool)!;
  const issuance = rows.find((r) => r.code === SYSTEM_ACCOUNTS.issuance)!;
  const postedUg = pool.credits_posted - pool.debits_posted;
  const pendingUg = pool.debits_pending;
  const availableUg = postedUg - pendingUg;
  const problems = await checkBooks(db);
  return {
    pool: { availableUg, pendingUg, postedUg, available: formatGrams(availableUg), pending: formatGrams(pendingUg), posted: formatGrams(postedUg) },
    issued: { postedUg: issuance.debits_posted, posted: formatGrams(issuance.debits_posted) },
    books: { balanced: problems.length === 0, problems },
  };
}
