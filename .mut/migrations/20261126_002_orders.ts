import type { Knex } from 'knex';

/**
 * Orders (what the customer asked for), STK payments (what M-Pesa said), every raw callback, SMS
 * messages and the job outbox. Vendor ids are unique so a duplicate can never be stored twice.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('orders', (t) => {
    t.uuid('id').primary();
    t.text('reference').notNullable().unique();
    t.text('kind').notNullable();
    t.bigInteger('customer_id').notNullable().references('customers.id');
    t.text('msisdn').notNullable();
    t.bigInteger('amount_cents').notNullable();
    t.bigInteger('price_cents_per_gram').notNullable();
    t.bigInteger('grams_ug').notNullable();
    t.text('status').notNullable();
    t.text('failure_code');
    t.text('failure_reason');
    // What created the order (e.g. the USSD session): a repeated request finds the same order.
    t.text('source_key').notNullable().unique();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`
    ALTER TABLE orders
      ADD CONSTRAINT orders_kind CHECK (kind IN ('buy')),
      ADD CONSTRAINT orders_status CHECK (status IN ('created', 'reserved', 'stk_requested', 'stk_sent', 'paid', 'failed', 'expired', 'review')),
      ADD CONSTRAINT orders_amounts_positive CHECK (amount_cents > 0 AND price_cents_per_gram > 0 AND grams_ug > 0)
  `);
  await knex.raw(`CREATE INDEX orders_customer_idx ON orders (customer_id, created_at DESC)`);
  await knex.raw(`CREATE INDEX orders_status_idx ON orders (status, updated_at)`);

  await knex.schema.createTable('stk_payments', (t) => {
    t.bigIncrements('id');
    t.uuid('order_id').notNullable().unique().references('orders.id');
    t.text('msisdn').notNullable();
    t.integer('amount_kes').notNullable();
    t.integer('push_attempts').notNullable().defaultTo(0);
    t.text('last_push_error');
    t.text('merchant_request_id').unique();
    t.text('checkout_request_id').unique();
    t.integer('result_code');
    t.text('result_desc');
    t.text('mpesa_receipt').unique();
    t.text('transaction_date');
    t.jsonb('callback_payload');
    t.timestamp('accepted_at', { useTz: true });
    t.timestamp('settled_at', { useTz: true });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });

  await knex.schema.createTable('mpesa_callbacks', (t) => {
    t.bigIncrements('id');
    t.text('kind').notNullable();
    t.text('checkout_request_id');
    t.text('outcome').notNullable();
    t.jsonb('payload').notNullable();
    t.timestamp('received_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`CREATE INDEX mpesa_callbacks_checkout_idx ON mpesa_callbacks (checkout_request_id)`);

  await knex.schema.createTable('sms_messages', (t) => {
    t.bigIncrements('id');
    t.bigInteger('customer_id').references('customers.id');
    t.text('msisdn').notNullable();
    t.text('body').notNullable();
    t.text('purpose').notNullable();
    // One message per business event (e.g. "receipt for order X"), however often it is written.
    t.text('dedupe_key').notNullable().unique();
    t.text('status').notNullable().defaultTo('queued');
    t.integer('attempts').notNullable().defaultTo(0);
    t.text('at_message_id').unique();
    t.text('at_status');
    t.integer('at_status_code');
    t.text('at_cost');
    t.text('last_error');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('sent_at', { useTz: true });
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`ALTER TABLE sms_messages ADD CONSTRAINT sms_status CHECK (status IN ('queued', 'sent', 'failed'))`);

  // Work the database has decided on, waiting to be handed to the queue. A queue outage delays it, loses none.
  await knex.schema.createTable('outbox', (t) => {
    t.bigIncrements('id');
    t.text('queue').notNullable();
    t.text('job_id').notNullable().unique();
    t.jsonb('payload').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('relayed_at', { useTz: true });
  });
  await knex.raw(`CREATE INDEX outbox_unrelayed_idx ON outbox (id) WHERE relayed_at IS NULL`);
}

export async function down(knex: Knex): Promise<void> {
  for (const table of ['outbox', 'sms_messages', 'mpesa_callbacks', 'stk_payments', 'orders']) {
    await knex.schema.dropTable(table);
  }
}
