import type { Db } from '../db/knex';

export interface DeliveryReport {
  id: string;
  /** As Africa's Talking sent it (documented or not); null when the report had none. */
  status: string | null;
  failureReason?: string | undefined;
}

/** Africa's Talking says what became of a message; an unknown id changes nothing. */
export async function recordDeliveryReport(db: Db, report: DeliveryReport): Promise<'updated' | 'unknown'> {
  const n = await db('sms_messages').where({ at_message_id: report.id }).update({
    delivery_status: report.status,
    delivery_failure_reason: report.failureReason || null,
    delivery_reported_at: db.fn.now(),
    updated_at: db.fn.now(),
  });
  return n > 0 ? 'updated' : 'unknown';
}
