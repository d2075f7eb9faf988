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

/**
 * queueSms for many messages in two statements (the SMS rows, then their outbox rows): the same rows, dedupe
 * keys and job ids as queueSms one by one, in input order. Returns the outbox row ids.
 */
export async function queueSmsMany(trx: Knex.Transaction, outbox: Outbox, messages: readonly NewSms[]): Promise<number[]> {
  if (messages.length === 0) return [];
  // A key written before (or twice in the list) keeps its first row, exactly as onConflict().ignore() does for one.
  const { rows } = await trx.raw(
    `WITH v AS (SELECT * FROM unnest(?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[]) WITH ORDINALITY AS v(customer_id, msisdn, body, purpose, dedupe_key, n)),
     ins AS (INSERT INTO sms_messages (customer_id, msisdn, body, purpose, dedupe_key)
             SELECT customer_id, msisdn, body, purpose, dedupe_key FROM v ORDER BY n
             ON CONFLICT (dedupe_key) DO NOTHING RETURNING id, dedupe_key)
     SELECT coalesce(ins.id, s.id) AS id FROM v LEFT JOIN ins ON ins.dedupe_key = v.dedupe_key
       LEFT JOIN sms_messages s ON s.dedupe_key = v.dedupe_key ORDER BY v.n`,
    [messages.map((m) => m.customerId) as unknown as number[], messages.map((m) => m.msisdn), messages.map((m) => m.body), messages.map((m) => m.purpose), messages.map((m) => m.dedupeKey)],
  );
  const ids = (rows as Array<{ id: number }>).map((r) => r.id);
  return outbox.writeMany(trx, 'sms', ids.map((id) => ({ jobId: `sms-${id}`, payload: { smsId: id } })));
}
