import type { Db } from '../db/knex';
import type { Msisdn } from '../lib/msisdn';

export interface Customer {
  id: number;
  msisdn: Msisdn;
  language: string;
}

/** One round trip: the customer for this phone number, created on first contact. */
export async function findOrCreateCustomer(db: Db, msisdn: Msisdn): Promise<Customer> {
  const { rows } = await db.raw(
    `INSERT INTO customers (msisdn) VALUES (?) ON CONFLICT (msisdn) DO UPDATE SET msisdn = EXCLUDED.msisdn
     RETURNING id, msisdn, language`,
    [msisdn],
  );
  return rows[0];
}
