import type { Db } from '../db/knex';
import type { Msisdn } from '../lib/msisdn';

export interface Customer {
  id: number;
  msisdn: Msisdn;
  language: string;
  /** This very request created the customer: their first dial. */
  created: boolean;
  hasPin: boolean;
  languageChosen: boolean;
  pinLockedUntil: Date | null;
}

const COLUMNS = `id, msisdn, language, pin_hash IS NOT NULL AS has_pin, language_chosen_at IS NOT NULL AS language_chosen, pin_locked_until`;

/**
 * One round trip: the customer for this phone number, created on first contact. A returning caller (nearly
 * every request) is only READ: no new row version, no WAL, no commit to wait for; the insert happens only
 * when the number is new.
 */
export async function findOrCreateCustomer(db: Db, msisdn: Msisdn): Promise<Customer> {
  const { rows } = await db.raw(
    `WITH found AS (SELECT ${COLUMNS}, false AS created FROM customers WHERE msisdn = ?),
     inserted AS (
       INSERT INTO customers (msisdn) SELECT ? WHERE NOT EXISTS (SELECT 1 FROM found)
       ON CONFLICT (msisdn) DO NOTHING
       RETURNING ${COLUMNS}, true AS created)
     SELECT * FROM found UNION ALL SELECT * FROM inserted`,
    [msisdn, msisdn],
  );
  // Nothing: a concurrent first request inserted this number after our read; it is committed and visible now.
  const r = rows[0] ?? (await db.raw(`SELECT ${COLUMNS}, false AS created FROM customers WHERE msisdn = ?`, [msisdn])).rows[0];
  return {
    id: r.id,
    msisdn: r.msisdn,
    language: r.language,
    created: r.created,
    hasPin: r.has_pin,
    languageChosen: r.language_chosen,
    pinLockedUntil: r.pin_locked_until ? new Date(r.pin_locked_until) : null,
  };
}
