import type { Knex } from 'knex';

/**
 * The wallet side of the USSD menu: the wallet PIN (a slow salted hash only, never the PIN), its
 * lockout, the language a saver chose, and Africa's Talking's end-of-session notifications.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('customers', (t) => {
    // `scrypt$N$r$p$<salt>$<hash>`: the parameters travel with the hash, so they can be raised later.
    t.text('pin_hash');
    // A new PIN typed once, waiting for the second entry: a hash too, and only for a few minutes.
    t.text('pin_staged_hash');
    t.timestamp('pin_staged_at', { useTz: true });
    t.integer('pin_failed_attempts').notNullable().defaultTo(0);
    t.timestamp('pin_locked_until', { useTz: true });
    t.timestamp('pin_changed_at', { useTz: true });
    // Null until the saver picks a language (first dial or My account); `language` holds the default until then.
    t.timestamp('language_chosen_at', { useTz: true });
  });
  await knex.raw(`
    ALTER TABLE customers
      ADD CONSTRAINT customers_language CHECK (language IN ('en', 'sw')),
      ADD CONSTRAINT customers_pin_attempts CHECK (pin_failed_attempts >= 0)
  `);

  // One row per USSD session that Africa's Talking reports as ended. `input` has every PIN position scrubbed.
  await knex.schema.createTable('ussd_events', (t) => {
    t.bigIncrements('id');
    t.text('session_id').notNullable().unique();
    t.text('msisdn');
    t.text('service_code');
    t.text('network_code');
    t.text('status').notNullable();
    t.text('input');
    t.integer('duration_ms');
    t.text('cost');
    t.text('error_message');
    t.integer('hops_count');
    t.text('reported_date');
    t.timestamp('received_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`CREATE INDEX ussd_events_msisdn_idx ON ussd_events (msisdn, received_at DESC)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('ussd_events');
  await knex.raw('ALTER TABLE customers DROP CONSTRAINT customers_language, DROP CONSTRAINT customers_pin_attempts');
  await knex.schema.alterTable('customers', (t) => {
    for (const c of ['pin_hash', 'pin_staged_hash', 'pin_staged_at', 'pin_failed_attempts', 'pin_locked_until', 'pin_changed_at', 'language_chosen_at']) t.dropColumn(c);
  });
}
