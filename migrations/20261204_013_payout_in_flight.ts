import type { Knex } from 'knex';

/**
 * Record before you call, for payouts too, and a sweep for sales nobody hears about.
 *  - in_flight_at: set (and committed) just before each B2C request leaves, cleared with its answer. A
 *    re-run that finds it set knows an earlier attempt may have reached M-Pesa (the worker died after
 *    the request left), and folds it into maybe_sent: no later refusal may then return the gold blindly.
 *  - sweep_checks / next_sweep_at: the reconciliation sweep's own Transaction Status checks of a payout
 *    that went silent (no Result, no timeout, no status answer), and when it may look again (backoff,
 *    and a lease while one run asks).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('payouts', (t) => {
    t.timestamp('in_flight_at', { useTz: true });
    t.integer('sweep_checks').notNullable().defaultTo(0);
    t.timestamp('next_sweep_at', { useTz: true });
  });
  // The sweep reads unsettled payouts only.
  await knex.raw(`CREATE INDEX payouts_unsettled_idx ON payouts (next_sweep_at NULLS FIRST) WHERE settled_at IS NULL`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX IF EXISTS payouts_unsettled_idx');
  await knex.schema.alterTable('payouts', (t) => {
    t.dropColumn('next_sweep_at');
    t.dropColumn('sweep_checks');
    t.dropColumn('in_flight_at');
  });
}
