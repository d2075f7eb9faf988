import type { Knex } from 'knex';

/**
 * Short-lived shared values (USSD sessions, the Daraja token and its refresh lock) when the service
 * runs without Redis. With Redis configured the table stays empty.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('kv_store', (t) => {
    t.text('key').primary();
    t.text('value').notNullable();
    t.timestamp('expires_at', { useTz: true }).notNullable();
  });
  await knex.raw('CREATE INDEX kv_store_expires_idx ON kv_store (expires_at)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('kv_store');
}
