import type { Db } from '../db/knex';
import { fundPool } from '../ledger/fund-pool';
import { accountIdByCode, SYSTEM_ACCOUNTS } from '../ledger/ledger';
import { UG_PER_GRAM } from '../lib/units';

/** The first sandbox start puts demo gold in the pool (once: never again after any funding). */
export async function fundDemoPoolOnce(db: Db, grams: number): Promise<boolean> {
  if (grams <= 0) return false;
  const pool = await accountIdByCode(db, SYSTEM_ACCOUNTS.pool);
  const funded = await db('transfers').where({ credit_account_id: pool }).first('id');
  if (funded) return false;
  await fundPool(db, grams * UG_PER_GRAM, 'sandbox demo funding');
  return true;
}
