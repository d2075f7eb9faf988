import type { Knex } from 'knex';

/**
 * The functions that run with sequential scans off (019, 021) also keep their generic plans: plan_cache_mode
 * force_generic_plan.
 *
 * plpgsql plans each statement with the call's values for its first five calls, then switches to a generic plan only
 * if that plan costs no more than the custom ones did. With enable_seqscan off, a generic plan that still needs a
 * sequential scan somewhere carries the planner's "disabled" cost (ten billion), so it never wins, and that statement
 * was planned afresh on EVERY call: about 170 µs of a one-transfer ledger_apply call (590 µs, 420 without the
 * setting) on the benchmark machine, measured with synchronous_commit off to leave the commit out. Forced generic,
 * each statement is planned once per connection, still with sequential scans off (so not the sequential scans a
 * young database's statistics would pick, 019's reason): 490 µs, and an 8-transfer call 650 µs instead of 770 to 985.
 * test/integration/place-buy-plans.test.ts and test/property/ledger-batch.test.ts still count the rows each reads.
 */
const FUNCTIONS = [
  'ledger_create_transfers(text[], bigint[], bigint[], bigint[], text[], timestamptz[], text)',
  'ledger_resolve_transfers(text[], text[])',
  'ledger_apply(text[], bigint[], bigint[], bigint[], text[], timestamptz[], text[], text[])',
  'place_buy_order(uuid, text, bigint, text, bigint, bigint, bigint, text, bigint, text[], text[])',
  'check_daily_limit(bigint, text, text, bigint, bigint, text[])',
];

export async function up(knex: Knex): Promise<void> {
  for (const f of FUNCTIONS) await knex.raw(`ALTER FUNCTION ${f} SET plan_cache_mode = force_generic_plan`);
}

export async function down(knex: Knex): Promise<void> {
  for (const f of FUNCTIONS) await knex.raw(`ALTER FUNCTION ${f} RESET plan_cache_mode`);
}
