import type { Knex } from 'knex';

/** What Africa's Talking's delivery reports say happened to each message after it was accepted. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('sms_messages', (t) => {
    t.text('delivery_status');
    t.text('delivery_failure_reason');
    t.timestamp('delivery_reported_at', { useTz: true });
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('sms_messages', (t) => {
    t.dropColumn('delivery_status');
    t.dropColumn('delivery_failure_reason');
    t.dropColumn('delivery_reported_at');
  });
}
