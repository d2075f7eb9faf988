import type { Knex } from 'knex';

/**
 * Reconciliation and crash safety for STK payments (docs/RELIABILITY.md).
 *
 * stk_payments learns:
 *  - how its result was decided (settled_by) and how a callback was tied to it (matched_by), so that a
 *    Query answer can never overwrite a callback result and an operator can see why an order is paid;
 *  - what became of the last push attempt (push_outcome). `in_flight` is written BEFORE Daraja is
 *    called, so a process killed mid-call leaves `in_flight` behind: the outcome is unknown, and the
 *    next run must not push again;
 *  - the STK Query schedule (query_attempts, next_query_at) of the reconciliation job.
 * ops_alerts holds what needs a person: a payment we could not turn into gold, an orphan payment, a
 * reservation that expired without an answer from M-Pesa.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('stk_payments', (t) => {
    t.text('settled_by');
    t.text('matched_by');
    t.text('push_outcome');
    t.timestamp('push_started_at', { useTz: true });
    t.integer('query_attempts').notNullable().defaultTo(0);
    t.timestamp('next_query_at', { useTz: true });
    t.timestamp('last_query_at', { useTz: true });
    t.text('last_query_result');
  });
  await knex.raw(`
    ALTER TABLE stk_payments
      ADD CONSTRAINT stk_payments_settled_by CHECK (settled_by IN ('callback', 'query', 'expiry')),
      ADD CONSTRAINT stk_payments_matched_by CHECK (matched_by IN ('checkout_id', 'phone_amount_window')),
      ADD CONSTRAINT stk_payments_push_outcome CHECK (push_outcome IN ('in_flight', 'accepted', 'not_delivered', 'unknown')),
      ADD CONSTRAINT stk_payments_settled_shape CHECK ((settled_by IS NULL) = (settled_at IS NULL))
  `);
  // Payments already settled before this migration were settled by their callback.
  await knex.raw(`UPDATE stk_payments SET settled_by = 'callback', matched_by = 'checkout_id' WHERE settled_at IS NOT NULL`);
  // Attempts made before push_outcome existed: an error we stored was an answer or a network error;
  // without knowing which, they count as unknown (never pushed again), which is the safe side.
  await knex.raw(`UPDATE stk_payments SET push_outcome = CASE WHEN checkout_request_id IS NOT NULL THEN 'accepted' ELSE 'unknown' END,
                         push_started_at = coalesce(accepted_at, created_at)
                   WHERE push_attempts > 0`);
  // The reconciliation job's scans: payments awaiting an answer, and pushes whose outcome is unknown.
  await knex.raw(`CREATE INDEX stk_payments_awaiting_idx ON stk_payments (next_query_at) WHERE settled_at IS NULL`);
  await knex.raw(`CREATE INDEX stk_payments_unmatched_idx ON stk_payments (msisdn, amount_kes, push_started_at) WHERE checkout_request_id IS NULL`);

  await knex.schema.createTable('ops_alerts', (t) => {
    t.bigIncrements('id');
    t.text('kind').notNullable();
    t.text('severity').notNullable();
    t.uuid('order_id').references('orders.id');
    t.text('message').notNullable();
    t.jsonb('details').notNullable().defaultTo('{}');
    // One alert per event, however often the code that raises it runs.
    t.text('dedupe_key').notNullable().unique();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('resolved_at', { useTz: true });
    t.text('resolution');
  });
  await knex.raw(`ALTER TABLE ops_alerts ADD CONSTRAINT ops_alerts_severity CHECK (severity IN ('error', 'warn'))`);
  await knex.raw(`CREATE INDEX ops_alerts_open_idx ON ops_alerts (created_at) WHERE resolved_at IS NULL`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('ops_alerts');
  await knex.raw(`DROP INDEX IF EXISTS stk_payments_awaiting_idx`);
  await knex.raw(`DROP INDEX IF EXISTS stk_payments_unmatched_idx`);
  await knex.raw(`
    ALTER TABLE stk_payments
      DROP CONSTRAINT stk_payments_settled_by,
      DROP CONSTRAINT stk_payments_matched_by,
      DROP CONSTRAINT stk_payments_push_outcome,
      DROP CONSTRAINT stk_payments_settled_shape
  `);
  await knex.schema.alterTable('stk_payments', (t) => {
    for (const c of ['settled_by', 'matched_by', 'push_outcome', 'push_started_at', 'query_attempts', 'next_query_at', 'last_query_at', 'last_query_result']) t.dropColumn(c);
  });
}
