import type { Knex } from 'knex';

/**
 * A USSD session is a phone's and a session id's together: another phone sending the same session id
 * gets an end-of-session row of its own instead of being taken for a repeat of the first phone's.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE ussd_events DROP CONSTRAINT ussd_events_session_id_unique`);
  await knex.raw(`ALTER TABLE ussd_events ADD CONSTRAINT ussd_events_session_phone_unique UNIQUE NULLS NOT DISTINCT (session_id, msisdn)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE ussd_events DROP CONSTRAINT ussd_events_session_phone_unique`);
  await knex.raw(`ALTER TABLE ussd_events ADD CONSTRAINT ussd_events_session_id_unique UNIQUE (session_id)`);
}
