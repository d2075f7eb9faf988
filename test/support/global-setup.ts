import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { createDb, migrateLatest } from '../../src/db/knex';
import { ADMIN_DATABASE_URL, TEST_REDIS_URL, databaseUrl, templateDatabase } from './test-env';

/** One migrated template database per run; each test file clones it (CREATE DATABASE ... TEMPLATE). */
export default async function globalSetup() {
  const id = randomBytes(4).toString('hex');
  process.env.GOLD_TEST_RUN_ID = id;

  const admin = createDb(ADMIN_DATABASE_URL, { max: 1 });
  try {
    await admin.raw('select 1');
  } catch (err) {
    throw new Error(`Postgres is not reachable at ${ADMIN_DATABASE_URL}: ${(err as Error).message}`);
  }
  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1, lazyConnect: true });
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    throw new Error(`Redis is not reachable at ${TEST_REDIS_URL}: ${(err as Error).message}`);
  } finally {
    redis.disconnect();
  }

  await admin.raw(`CREATE DATABASE ${templateDatabase(id)}`);
  await admin.destroy();
  const template = createDb(databaseUrl(templateDatabase(id)), { max: 1 });
  await migrateLatest(template);
  await template.destroy();
}
