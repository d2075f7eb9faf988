import type { Knex } from 'knex';

/**
 * Paybill (M-Pesa C2B) payments: one row per M-Pesa TransID, whatever became of it. The unique TransID
 * is what makes a confirmation idempotent: a duplicate (or a concurrent twin) cannot insert a second
 * row, so it cannot credit twice. The raw confirmation is kept as Safaricom sent it. A payment that
 * could not be turned into gold is `review`: with an order when it names a wallet, without one when
 * its account number is not a phone number (an operator refunds it by hand).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('c2b_payments', (t) => {
    t.bigIncrements('id');
    t.text('trans_id').notNullable().unique();
    t.uuid('order_id').unique().references('orders.id');
    t.text('bill_ref_number').notNullable();
    // The wallet the account number names (2547…/2541…); null when it names none.
    t.text('msisdn');
    t.bigInteger('amount_cents').notNullable();
    t.text('business_shortcode').notNullable();
    t.text('trans_time');
    t.text('status').notNullable();
    t.text('review_reason');
    t.jsonb('payload').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`
    ALTER TABLE c2b_payments
      ADD CONSTRAINT c2b_payments_status CHECK (status IN ('credited', 'review')),
      ADD CONSTRAINT c2b_payments_amount CHECK (amount_cents >= 0),
      ADD CONSTRAINT c2b_payments_credited_shape CHECK (status <> 'credited' OR order_id IS NOT NULL)
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('c2b_payments');
}
