import type { Knex } from 'knex';

/**
 * Abuse limits.
 *  - rate_limits: rate-limiter-flexible's table for its Postgres store (used when there is no Redis),
 *    in the shape the library expects; created here so the service never runs DDL at request time.
 *  - At most one open buy per phone number: M-Pesa shows one STK prompt per phone at a time, so a
 *    second open payment could only fail or confuse. A partial unique index makes it a database fact,
 *    whatever races between two USSD sessions.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE rate_limits (
      key varchar(255) PRIMARY KEY,
      points integer NOT NULL DEFAULT 0,
      expire bigint
    )`);
  await knex.raw('CREATE INDEX rate_limits_expire_idx ON rate_limits (expire)');
  await knex.raw(`
    CREATE UNIQUE INDEX orders_one_open_buy_per_msisdn ON orders (msisdn)
      WHERE kind = 'buy' AND status IN ('created', 'reserved', 'stk_requested', 'stk_sent')`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX orders_one_open_buy_per_msisdn');
  await knex.schema.dropTable('rate_limits');
}
