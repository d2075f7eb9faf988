import type { Knex } from 'knex';

/**
 * Operator decisions are final. A review order resolved by refund (`refunded`) or by closing it
 * (`closed`) gets a status of its own that no callback, STK Query, B2C Result or expiry can move:
 * only `failed`/`expired` orders may still turn `paid` on a late success, never these.
 * Sell orders in review are resolved with `paid_out` (the payout went out: post) or `not_paid`
 * (it did not: void, the seller keeps the gold; the order is `closed`).
 */
const OLD_STATUSES = `'created', 'reserved', 'stk_requested', 'stk_sent', 'payout_requested', 'payout_sent', 'paid', 'failed', 'expired', 'review'`;

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE orders
      DROP CONSTRAINT orders_status,
      ADD CONSTRAINT orders_status CHECK (status IN (${OLD_STATUSES}, 'refunded', 'closed'))
  `);
  await knex.raw(`
    ALTER TABLE order_resolutions
      DROP CONSTRAINT order_resolutions_action,
      ADD CONSTRAINT order_resolutions_action CHECK (action IN ('credit', 'refund_note', 'close', 'paid_out', 'not_paid'))
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE order_resolutions
      DROP CONSTRAINT order_resolutions_action,
      ADD CONSTRAINT order_resolutions_action CHECK (action IN ('credit', 'refund_note', 'close'))
  `);
  await knex.raw(`ALTER TABLE orders DROP CONSTRAINT orders_status, ADD CONSTRAINT orders_status CHECK (status IN (${OLD_STATUSES}))`);
}
