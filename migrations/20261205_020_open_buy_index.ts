import type { Knex } from 'knex';

/**
 * The open-buy check of place_buy_order (`msisdn = … AND kind = 'buy' AND status = ANY(…)`) gets a plain index in
 * place of 019's partial one (`… WHERE kind = 'buy'`).
 *
 * The partial index was a trap for the daily-limit sum in the same function (`customer_id = … AND kind = 'buy' AND
 * created_at >= today`). plpgsql plans that statement once per connection; on a young database, where `orders` is
 * nearly empty, a whole read of the small partial index (its predicate implied by `kind = 'buy'`) looked cheapest,
 * and with enable_seqscan off nothing stopped it. Every confirm then read every buy order ever placed: 0.7 ms a
 * confirm in the benchmark, and growing. An index without a predicate cannot be chosen for a statement that names no
 * msisdn, so the sum keeps orders_customer_kind_idx (test/integration/place-buy-plans.test.ts).
 *
 * Built without CONCURRENTLY (migrations run in a transaction): it blocks writes to a large `orders` table while it
 * builds.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX IF EXISTS orders_buy_msisdn_idx');
  await knex.raw('CREATE INDEX orders_msisdn_kind_status_idx ON orders (msisdn, kind, status)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX IF EXISTS orders_msisdn_kind_status_idx');
  await knex.raw(`CREATE INDEX orders_buy_msisdn_idx ON orders (msisdn, status) WHERE kind = 'buy'`);
}
