import type { Knex } from 'knex';

/**
 * The audit trail of review resolutions (POST /ops/orders/:id/resolve): who did what to which order,
 * why, and which ledger transfer it made. Rows are only ever inserted.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('order_resolutions', (t) => {
    t.bigIncrements('id');
    t.uuid('order_id').notNullable().references('orders.id');
    t.text('action').notNullable();
    // Self-declared by the caller (the ops token is shared), as written in the request.
    t.text('operator').notNullable();
    t.text('note').notNullable();
    t.text('from_status').notNullable();
    t.text('to_status').notNullable();
    // The transfer that moved gold (a post or a void), or null when nothing moved.
    t.text('transfer_id').references('transfers.id');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`
    ALTER TABLE order_resolutions
      ADD CONSTRAINT order_resolutions_action CHECK (action IN ('credit', 'refund_note', 'close')),
      ADD CONSTRAINT order_resolutions_operator CHECK (length(operator) BETWEEN 1 AND 100),
      ADD CONSTRAINT order_resolutions_note CHECK (length(note) BETWEEN 1 AND 1000)
  `);
  await knex.raw(`CREATE INDEX order_resolutions_order_idx ON order_resolutions (order_id, id)`);
  // The CSV export reads orders by creation time.
  await knex.raw(`CREATE INDEX orders_created_id_idx ON orders (created_at, id)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX IF EXISTS orders_created_id_idx');
  await knex.schema.dropTable('order_resolutions');
}
