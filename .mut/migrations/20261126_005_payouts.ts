import type { Knex } from 'knex';

/**
 * Selling gold back for an M-Pesa B2C payout. The order is the business state machine (kind 'sell':
 * reserved -> payout_requested -> payout_sent -> paid | failed | review); the payout row holds what
 * M-Pesa said, under unique constraints, so a duplicated or late callback can never be applied twice.
 * Its id is the OriginatorConversationID we send: our idempotency key with Daraja.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE orders
      DROP CONSTRAINT orders_kind,
      ADD CONSTRAINT orders_kind CHECK (kind IN ('buy', 'sell')),
      DROP CONSTRAINT orders_status,
      ADD CONSTRAINT orders_status CHECK (status IN (
        'created', 'reserved', 'stk_requested', 'stk_sent', 'payout_requested', 'payout_sent', 'paid', 'failed', 'expired', 'review'))
  `);
  // Daily limits sum a customer's orders of one kind since midnight.
  await knex.raw(`CREATE INDEX orders_customer_kind_idx ON orders (customer_id, kind, created_at)`);

  await knex.schema.createTable('payouts', (t) => {
    t.text('id').primary();
    t.uuid('order_id').notNullable().unique().references('orders.id');
    t.text('msisdn').notNullable();
    t.integer('amount_kes').notNullable();
    t.text('status').notNullable().defaultTo('created');
    t.integer('attempts').notNullable().defaultTo(0);
    t.text('last_error');
    // An attempt whose outcome we could not see (network error, timeout): Daraja may hold the request.
    t.boolean('maybe_sent').notNullable().defaultTo(false);
    t.text('conversation_id').unique();
    t.text('transaction_id').unique();
    t.text('receiver_name');
    t.timestamp('completed_at', { useTz: true });
    t.text('result_code');
    t.text('result_desc');
    t.jsonb('result_payload');
    // Transaction Status checks scheduled so far (each has its own job id: payout-status-<id>-<n>).
    t.integer('status_checks').notNullable().defaultTo(0);
    t.timestamp('requested_at', { useTz: true });
    t.timestamp('accepted_at', { useTz: true });
    t.timestamp('settled_at', { useTz: true });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`
    ALTER TABLE payouts
      ADD CONSTRAINT payouts_id_shape CHECK (char_length(id) BETWEEN 1 AND 20),
      ADD CONSTRAINT payouts_amount CHECK (amount_kes BETWEEN 10 AND 250000),
      ADD CONSTRAINT payouts_status CHECK (status IN ('created', 'requested', 'accepted', 'paid', 'failed', 'review'))
  `);

  // A status query has ids of its own; a "not found" answer names only them, so they are how it is matched.
  await knex.schema.createTable('payout_status_queries', (t) => {
    t.bigIncrements('id');
    t.text('payout_id').notNullable().references('payouts.id');
    t.integer('check_no').notNullable();
    t.text('query_originator_conversation_id').unique();
    t.text('query_conversation_id').unique();
    t.text('result_code');
    t.text('result_desc');
    t.text('transaction_status');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('answered_at', { useTz: true });
    t.unique(['payout_id', 'check_no']);
  });

  // B2C result, queue-timeout and status callbacks are kept raw beside the STK ones.
  await knex.schema.alterTable('mpesa_callbacks', (t) => {
    t.text('originator_conversation_id');
  });
  await knex.raw(`CREATE INDEX mpesa_callbacks_originator_idx ON mpesa_callbacks (originator_conversation_id)`);

  // Jobs that must not run before a moment (a later Transaction Status check).
  await knex.schema.alterTable('outbox', (t) => {
    t.timestamp('run_at', { useTz: true });
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('outbox', (t) => t.dropColumn('run_at'));
  await knex.raw('DROP INDEX mpesa_callbacks_originator_idx');
  await knex.schema.alterTable('mpesa_callbacks', (t) => t.dropColumn('originator_conversation_id'));
  await knex.schema.dropTable('payout_status_queries');
  await knex.schema.dropTable('payouts');
  await knex.raw('DROP INDEX orders_customer_kind_idx');
  await knex.raw(`
    ALTER TABLE orders
      DROP CONSTRAINT orders_kind,
      ADD CONSTRAINT orders_kind CHECK (kind IN ('buy')),
      DROP CONSTRAINT orders_status,
      ADD CONSTRAINT orders_status CHECK (status IN ('created', 'reserved', 'stk_requested', 'stk_sent', 'paid', 'failed', 'expired', 'review'))
  `);
}
