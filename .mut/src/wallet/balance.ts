import type { Knex } from 'knex';
import type { Db } from '../db/knex';
import { accountBalance } from '../ledger/ledger';

export interface WalletBalance {
  /** Gold the customer owns (settled), micrograms. */
  postedUg: number;
  /** What they can sell now: owned, less what pending sells hold. */
  availableUg: number;
  /** Pending buys: reserved for them, not yet paid. */
  pendingInUg: number;
  /** Pending sells: held until the payout settles. */
  pendingOutUg: number;
}

/** One row read; a customer who never bought has no account yet and no gold. */
export async function walletBalance(db: Db | Knex.Transaction, customerId: number): Promise<WalletBalance> {
  const account = await db('accounts').where({ customer_id: customerId }).first('id');
  if (!account) return { postedUg: 0, availableUg: 0, pendingInUg: 0, pendingOutUg: 0 };
  const b = await accountBalance(db, account.id);
  return { postedUg: Number(b.posted), availableUg: Number(b.available), pendingInUg: Number(b.pendingIn), pendingOutUg: Number(b.pendingOut) };
}
