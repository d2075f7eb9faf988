import { VendorError } from '../lib/errors';

/**
 * What Africa's Talking's answer to a send says about ONE recipient. AT answers HTTP 201 even when
 * nothing was sent: the truth is each recipient's `statusCode` (REFERENCE.md, and the real answers in
 * test/fixtures/realworld/at-sms.json):
 *  - 100 Processed, 101 Sent, 102 Queued: sent;
 *  - the recipient cannot get it (invalid or unsupported number, blacklisted, do-not-disturb): permanent;
 *  - our account cannot send (risk hold, sender id not ours, no balance): permanent, and an operator
 *    must act, so it raises an ops alert;
 *  - anything else (gateway errors, could not route, a code we do not know): retry.
 */
export type RecipientVerdict =
  | { kind: 'sent' }
  | { kind: 'permanent'; accountProblem: boolean }
  | { kind: 'retry' };

const SENT = new Set([100, 101, 102]);
/** The recipient's side: 403 InvalidPhoneNumber, 404 UnsupportedNumberType, 406 UserInBlacklist, 409 DoNotDisturbRejection. */
const RECIPIENT_REFUSED = new Set([403, 404, 406, 409]);
/** Our side: 401 RiskHold, 402 InvalidSenderId, 405 InsufficientBalance. */
const ACCOUNT_PROBLEM = new Set([401, 402, 405]);

export function classifyRecipient(statusCode: number | null, status: string): RecipientVerdict {
  if (statusCode === null) {
    // The pre-2017 gateway sent no statusCode, only words ("Success", "Invalid Phone Number", "Could Not Send").
    if (/^success$/i.test(status)) return { kind: 'sent' };
    if (/invalid phone number/i.test(status)) return { kind: 'permanent', accountProblem: false };
    return { kind: 'retry' };
  }
  if (SENT.has(statusCode)) return { kind: 'sent' };
  if (RECIPIENT_REFUSED.has(statusCode)) return { kind: 'permanent', accountProblem: false };
  if (ACCOUNT_PROBLEM.has(statusCode)) return { kind: 'permanent', accountProblem: true };
  return { kind: 'retry' };
}

/** A send AT answered but did not carry out: its status is recorded with the message. */
export class SmsNotSent extends VendorError {
  constructor(
    kind: 'retry' | 'permanent',
    readonly statusCode: number | null,
    readonly status: string,
    /** Our account's fault (sender id, balance, risk hold): an operator must act. */
    readonly accountProblem: boolean,
  ) {
    super('africastalking', kind, statusCode === null ? 'recipient_unknown' : `recipient_${statusCode}`, status);
  }
}

/** An answer with no recipient at all: `Message` says why (e.g. `InvalidSenderId`, seen with HTTP 201). */
export function classifyEmptyAnswer(message: string): SmsNotSent {
  if (/InvalidSenderId/i.test(message)) return new SmsNotSent('permanent', null, 'InvalidSenderId', true);
  return new SmsNotSent('retry', null, message.slice(0, 100) || 'no recipient in answer', false);
}

/** Delivery-report statuses Africa's Talking documents; others are stored too, and logged. */
export const KNOWN_DELIVERY_STATUSES: ReadonlySet<string> = new Set(['Sent', 'Submitted', 'Buffered', 'Success', 'Rejected', 'Failed', 'AbsentSubscriber', 'Expired']);

/** Anything an SMS send threw, as a VendorError: ours pass through; anything else is retried (an SMS is not money). */
export function asSmsError(err: unknown): VendorError {
  return err instanceof VendorError ? err : new VendorError('africastalking', 'retry', 'unknown', (err as Error)?.message ?? String(err));
}
