import type { Knex } from 'knex';
import type { Outbox } from '../infra/outbox';

export interface NewSms {
  customerId: number | null;
  msisdn: string;
  body: string;
  purpose: string;
  /** One message per business event: writing the same key twice sends once. */
  dedupeKey: string;
}

/** Records an SMS and its delivery job in the caller's transaction. Returns the outbox row id. */
export async function queueSms(trx: Knex.Transaction, outbox: Outbox, sms: NewSms): Promise<number> {
  const [row] = await trx('sms_messages')
    .insert({ customer_id: sms.customerId, msisdn: sms.msisdn, body: sms.body, purpose: sms.purpose, dedupe_key: sms.dedupeKey })
    .onConflict('dedupe_key')
    .ignore()
    .returning('id');
  const id = row ? row.id : (await trx('sms_messages').where({ dedupe_key: sms.dedupeKey }).first('id')).id;
  return outbox.write(trx, 'sms', `sms-${id}`, { smsId: id });
}
