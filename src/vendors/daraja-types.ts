import type { Msisdn } from '../lib/msisdn';

/** What the Daraja client takes and returns: our own types, not Daraja's wire shapes. */

export interface StkPushRequest {
  msisdn: Msisdn;
  amountKes: number;
  /** Shown to the payer; Daraja allows at most 12 characters. */
  accountReference: string;
  /** At most 13 characters. */
  description: string;
}

export interface StkPushAccepted {
  merchantRequestId: string;
  checkoutRequestId: string;
}

/**
 * STK Query's answer. `pending` is not an error: Daraja answers "being processed" while the prompt is
 * open. `final` carries no receipt and no amount (Query never does); a stored success must never be
 * overwritten by it.
 */
export type StkQueryResult =
  | { state: 'pending' }
  | {
      state: 'final';
      /** 0 is the only success; NON_NUMERIC_RESULT_CODE (-1) for an alphanumeric code, see resultCodeText. */
      resultCode: number;
      resultCodeText: string;
      resultDesc: string;
    };

/** The B2C settings; not in Config yet, so they arrive as the constructor's last, optional parameter. */
export interface B2cSettings {
  /** PartyA: the B2C (bulk disbursement) shortcode, not the paybill. */
  shortcode: string;
  initiatorName: string;
  /** The initiator password encrypted with Safaricom's certificate: see securityCredential(). */
  securityCredential: string;
  resultUrl: string;
  timeoutUrl: string;
  /** Where Transaction Status results go. */
  statusResultUrl: string;
}

export interface B2cPaymentRequest {
  /** OUR idempotency key: reuse the SAME value for every retry of one payout, never a new one. */
  originatorConversationId: string;
  msisdn: Msisdn;
  /** Whole KES, 10 to 250,000. */
  amountKes: number;
  /** 2 to 100 characters. */
  remarks: string;
  /** At most 100 characters. */
  occasion?: string;
}

/**
 * A B2C request Daraja holds. `duplicate: true` is Daraja's "500.002.1001 Duplicate
 * OriginatorConversationID": an EARLIER request with this id was already accepted (typically one whose
 * answer we lost to a timeout), so the payout is in flight or done and must NOT be considered failed,
 * nor re-sent under a new id. Its result arrives at ResultURL like any other, or is found with
 * transactionStatus(). Daraja's duplicate answer carries no ConversationID, hence none here.
 */
export type B2cPaymentAccepted =
  | { duplicate: false; conversationId: string; originatorConversationId: string }
  | { duplicate: true; originatorConversationId: string };

/** Daraja's synchronous acknowledgement of a status query; the result itself arrives at statusResultUrl. */
export interface TransactionStatusAccepted {
  state: 'accepted';
  /** The query's own ids (not the payout's): they are the Result's ids at statusResultUrl. */
  queryConversationId: string | undefined;
  queryOriginatorConversationId: string | undefined;
}

export const B2C_MIN_KES = 10;
export const B2C_MAX_KES = 250_000;
