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

/** One round trip: the customer for this phone number, created on first contact. */
export async function findOrCreateCustomer(db: Db, msisdn: Msisdn): Promise<Customer> {
  const { rows } = await db.raw(
    `INSERT INTO customers (msisdn) VALUES (?) ON CONFLICT (msisdn) DO UPDATE SET msisdn = EXCLUDED.msisdn
     RETURNING id, msisdn, language, (xmax = 0) AS created, pin_hash IS NOT NULL AS has_pin,
               language_chosen_at IS NOT NULL AS language_chosen, pin_locked_until`,
    [msisdn],
  );
  const r = rows[0];
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
