import knexFactory, { Knex } from 'knex';
import { types } from 'pg';
import { migrationSource } from '../../migrations';
import type { Logger } from '../lib/logger';

// int8 columns hold micrograms and cents: return them as numbers, and refuse any that would lose precision.
types.setTypeParser(types.builtins.INT8, (value: string) => {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new RangeError(`int8 value ${value} exceeds the safe integer range`);
  return n;
});

export type Db = Knex;

export function createDb(databaseUrl: string, pool: { min?: number; max?: number } = {}, log?: Logger): Db {
  return knexFactory({
    client: 'pg',
    connection: databaseUrl,
    pool: { min: pool.min ?? 0, max: pool.max ?? 10 },
    // knex prints to the console by default; send its warnings through our logger instead.
    ...(log ? { log: { warn: (m: unknown) => log.warn({ component: 'knex' }, String(m)), error: (m: unknown) => log.error({ component: 'knex' }, String(m)), deprecate: () => undefined, debug: () => undefined } } : {}),
  });
}

export async function migrateLatest(db: Db): Promise<void> {
  await db.migrate.latest({ migrationSource });
}
