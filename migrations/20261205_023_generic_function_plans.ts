import type { Knex } from 'knex';

/**
 * The functions that run with sequential scans off (019, 021) also keep their generic plans: plan_cache_mode
 * force_generic_plan.
 *
 * plpgsql plans each statement with the call's values for its first five calls, then switches to a generic plan only
 * if that plan costs no more than the custom ones did. A generic plan assumes ten elements for `= ANY($array)` and
 * `unnest($array)`, so for the one to eight items of a call it always costs more, and these statements were planned
 * afresh on EVERY call (with enable_seqscan on or off; a review reproduced it with PREPARE). On the benchmark machine,
 * one connection, synchronous_commit off to leave the commit out: a one-transfer ledger_apply took 590 to 620 µs.
 * Forced generic, each statement is planned once per connection, still with sequential scans off (so not the
 * sequential scans a young database's statistics would pick, 019's reason): 490 µs, and an 8-transfer call 650 µs
 * instead of 770 to 985. auto_explain of all five on 300,000 transfers and orders showed index plans throughout.
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
