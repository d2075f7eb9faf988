import { randomUUID } from 'node:crypto';
import type { Db } from '../db/knex';
import { accountIdByCode, createPostedTransfer, SYSTEM_ACCOUNTS } from './ledger';

/** Adds gold to the pool as a ledger transfer from issuance: never a bare balance update. */
export async function fundPool(db: Db, micrograms: number, reference = 'pool funding'): Promise<string> {
  const id = `fund-${randomUUID()}`;
  await db.transaction(async (trx) => {
    await createPostedTransfer(trx, {
      id,
      debitAccountId: await accountIdByCode(trx, SYSTEM_ACCOUNTS.issuance),
      creditAccountId: await accountIdByCode(trx, SYSTEM_ACCOUNTS.pool),
      amount: micrograms,
      reference,
    });
  });
  return id;
}
