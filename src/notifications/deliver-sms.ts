import type { Knex } from 'knex';
import type { Db } from '../db/knex';
import type { Logger } from '../lib/logger';
import type { Metrics } from '../infra/metrics';
import { maskMsisdn, toE164, type Msisdn } from '../lib/msisdn';
import { asSmsError, SmsNotSent } from '../vendors/at-sms-status';
import type { SmsSender } from '../vendors/sms-client';
import { logOpsAlerts, raiseOpsAlert } from './ops-alerts';

export interface DeliverSmsDeps {
  db: Db;
  sms: SmsSender;
  log: Logger;
  metrics?: Metrics;
}

/**
 * Sends one queued SMS. Already sent: nothing to do. A retryable failure throws so the job retries
 * with backoff; a permanent one, or the last attempt, marks the message failed.
 */
export async function deliverSms(deps: DeliverSmsDeps, smsId: number, finalAttempt: boolean): Promise<void> {
  const msg = await deps.db('sms_messages').where({ id: smsId }).first();
  if (!msg || msg.status !== 'queued') return;
  await deps.db('sms_messages').where({ id: smsId }).increment('attempts', 1).update({ updated_at: deps.db.fn.now() });
  try {
    const accepted = await deps.sms.send(toE164(msg.msisdn as Msisdn), msg.body);
    await deps.db('sms_messages').where({ id: smsId, status: 'queued' }).update({
      status: 'sent',
      at_message_id: accepted.messageId,
      at_status: accepted.status,
      at_status_code: accepted.statusCode,
      at_cost: accepted.cost,
      last_error: null,
      sent_at: deps.db.fn.now(),
      updated_at: deps.db.fn.now(),
    });
    deps.metrics?.inc('sms_total', { status: 'sent' });
  } catch (err) {
    const e = asSmsError(err);
    const final = e.kind === 'permanent' || finalAttempt;
    // The failure and its account alert commit together: whoever sees the message failed sees the alert.
    const alert = await deps.db.transaction(async (trx) => {
      await trx('sms_messages').where({ id: smsId, status: 'queued' }).update({
        last_error: e.message.slice(0, 300),
        // What Africa's Talking said of this recipient, kept like a success's status.
        ...(e instanceof SmsNotSent ? { at_status: e.status, at_status_code: e.statusCode } : {}),
        ...(final ? { status: 'failed' } : {}),
        updated_at: trx.fn.now(),
      });
      return e instanceof SmsNotSent && e.accountProblem ? raiseAccountProblem(trx, e) : null;
    });
    if (alert) logOpsAlerts(deps.log, [alert]);
    deps.log.warn({ smsId, to: maskMsisdn(msg.msisdn), code: e.code, kind: e.kind, final }, 'sms send failed');
    deps.metrics?.inc('sms_total', { status: final ? 'failed' : 'retry' });
    if (!final) throw e;
  }
}

/**
 * Our Africa's Talking account cannot send (sender id not ours, no balance, risk hold): every SMS will
 * fail until an operator fixes it. One alert per cause per day, however many messages fail.
 */
function raiseAccountProblem(trx: Knex.Transaction, e: SmsNotSent) {
  const day = new Date().toISOString().slice(0, 10);
  return raiseOpsAlert(trx, {
    kind: 'sms_account_problem',
    severity: 'error',
    orderId: null,
    message: `Africa's Talking refused to send: ${e.status} (${e.statusCode ?? 'no code'}). Fix the account (sender id, balance) in AT's dashboard; messages failed meanwhile are in sms_messages with status failed`,
    details: { status: e.status, statusCode: e.statusCode },
    dedupeKey: `sms-account-${e.status}-${day}`,
  });
}
