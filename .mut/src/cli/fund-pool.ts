import { readDatabaseUrl } from '../config';
import { createDb, migrateLatest } from '../db/knex';
import { fundPool } from '../ledger/fund-pool';
import { accountBalance, accountIdByCode, SYSTEM_ACCOUNTS } from '../ledger/ledger';
import { formatGrams, parseGramsToMicrograms } from '../lib/units';

/** npm run pool:fund -- <grams>: adds gold to the pool from issuance, through the ledger. */
async function main() {
  const arg = process.argv[2] ?? '';
  const micrograms = parseGramsToMicrograms(arg);
  if (micrograms === null || micrograms <= 0) {
    console.error('usage: npm run pool:fund -- <grams>   (e.g. 1000 or 2.5, at most 6 decimals)');
    process.exit(2);
  }
  const db = createDb(readDatabaseUrl(), { max: 1 });
  try {
    await migrateLatest(db);
    const id = await fundPool(db, micrograms, `pool:fund ${arg} g`);
    const pool = await accountBalance(db, await accountIdByCode(db, SYSTEM_ACCOUNTS.pool));
    console.log(`funded ${formatGrams(micrograms)} g (transfer ${id}); pool available ${formatGrams(pool.available)} g`);
  } finally {
    await db.destroy();
  }
}

main().catch((err) => {
  console.error('pool:fund failed:', err instanceof Error ? err.message : err);
  process.exit(1);
});
