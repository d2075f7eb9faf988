import type { Knex } from 'knex';

/**
 * Drops orders_customer_idx (customer_id, created_at DESC): no query reads a customer's orders by time without their
 * kind any more, and orders_customer_kind_idx (customer_id, kind, created_at) serves the daily-limit sum and the
 * foreign key to customers. A status move changes indexed columns, so every move writes a new entry in EVERY index of
 * `orders` (no HOT update): one index fewer is one entry fewer per insert and per move, five per buy.
 * test/integration/place-buy-plans.test.ts checks that a confirm still reads a handful of rows.
 *
 * CONCURRENTLY, so that orders are not locked while it runs on a live database; that cannot run inside a
 * transaction, hence this migration's `config`.
 */
export const config = { transaction: false };

export async function up(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX CONCURRENTLY IF EXISTS orders_customer_idx');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_idx ON orders (customer_id, created_at DESC)');
}
