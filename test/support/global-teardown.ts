import { createDb } from '../../src/db/knex';
import { ADMIN_DATABASE_URL, databasePrefix, templateDatabase } from './test-env';

export default async function globalTeardown() {
  const id = process.env.GOLD_TEST_RUN_ID;
  if (!id) return;
  const admin = createDb(ADMIN_DATABASE_URL, { max: 1 });
  const { rows } = await admin.raw(`SELECT datname FROM pg_database WHERE datname LIKE ? OR datname = ?`, [
    `${databasePrefix(id)}%`,
    templateDatabase(id),
  ]);
  for (const { datname } of rows) await admin.raw(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`);
  await admin.destroy();
}
