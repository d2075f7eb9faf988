import type { Logger } from '../../lib/logger';
import { maskMsisdn } from '../../lib/msisdn';
import { darajaTimestamp } from '../../vendors/daraja-time';
import type { B2cPaymentBody, TransactionStatusBody } from './b2c-requests';
import { B2C_DEFAULT_OUTCOME, B2C_RESULT_DESCRIPTIONS, B2C_SCRIPTED_OUTCOMES, type B2cDelivery, type B2cResultCode } from './b2c-test-numbers';
import { CallbackPoster } from './callback-poster';
import { conversationId, darajaDateTime, dashedId, receiptNumber, uniqueFrom } from './wire';

/** Safaricom's own QueueTimeoutURL, echoed in every B2C Result's ReferenceData. */
const SAFARICOM_B2C_QUEUE_URL = 'https://internalsandbox.safaricom.co.ke/mpesa/b2cresults/v1/submit';
const STATUS_NOT_FOUND = { code: 2032, desc: 'The transaction receipt number does not exist.' } as const;
/** The emulator's customer name; Daraja masks the number and shows the registered name. */
const RECEIVER_NAME = 'JOHN DOE';

export interface Payout {
  originatorConversationId: string;
  conversationId: string;
  /** The receipt on success; a placeholder (first three receipt characters + zeros) on failure. */
  transactionId: string;
  phone: string;
  amount: number;
  partyA: string;
  occasion: string;
  resultUrl: string;
  timeoutUrl: string;
  acceptedAt: Date;
  resultCode: B2cResultCode;
  delivery: B2cDelivery;
  /** Utility account balance after this payout, as the Result reports it. */
  utilityBalance: number;
}

/**
 * Every B2C request the emulator accepted, keyed by OUR OriginatorConversationID (the idempotency key:
 * a second request with the same id is refused). The outcome is decided at acceptance, so Transaction
 * Status knows it at once; only its delivery waits callbackDelayMs.
 */
export class B2cPayouts {
  private readonly byOriginator = new Map<string, Payout>();
  private readonly byReceipt = new Map<string, Payout>();
  private readonly usedConversationIds = new Set<string>();
  private readonly usedReceipts = new Set<string>();
  private readonly poster: CallbackPoster;
  private utilityBalance: number;

  constructor(
    private readonly opts: { callbackDelayMs: number; utilityBalanceKes: number },
    private readonly now: () => Date,
    private readonly log: Logger,
  ) {
    this.poster = new CallbackPoster(log);
    this.utilityBalance = opts.utilityBalanceKes;
  }

  isDuplicate(originatorConversationId: string): boolean {
    return this.byOriginator.has(originatorConversationId);
  }

  find(originatorConversationId: string): Payout | undefined {
    return this.byOriginator.get(originatorConversationId);
  }

  /** Records an accepted payout, decides its outcome and schedules its delivery. */
  accept(body: B2cPaymentBody, initiatorValid: boolean): Payout {
    const acceptedAt = this.now();
    const scripted = B2C_SCRIPTED_OUTCOMES.get(body.PartyB) ?? B2C_DEFAULT_OUTCOME;
    // A bad initiator fails before anything else; the scripted failure next; then the real balance.
    let resultCode: B2cResultCode = initiatorValid ? scripted.resultCode : 2001;
    if (resultCode === 0 && body.Amount > this.utilityBalance) resultCode = 1;
    if (resultCode === 0) this.utilityBalance -= body.Amount;
    const receipt = uniqueFrom(this.usedReceipts, () => receiptNumber(acceptedAt));
    const payout: Payout = {
      originatorConversationId: body.OriginatorConversationID,
      conversationId: uniqueFrom(this.usedConversationIds, () => conversationId(acceptedAt)),
      transactionId: resultCode === 0 ? receipt : `${receipt.slice(0, 3)}0000000`,
      phone: body.PartyB,
      amount: body.Amount,
      partyA: body.PartyA,
      occasion: body.Occassion ?? '',
      resultUrl: body.ResultURL,
      timeoutUrl: body.QueueTimeOutURL,
      acceptedAt,
      resultCode,
      delivery: scripted.delivery,
      utilityBalance: this.utilityBalance,
    };
    this.byOriginator.set(payout.originatorConversationId, payout);
    if (resultCode === 0) this.byReceipt.set(payout.transactionId, payout);
    this.log.info(
      { originatorConversationId: payout.originatorConversationId, msisdn: maskMsisdn(payout.phone), amount: payout.amount, resultCode, delivery: payout.delivery },
      'emulator: b2c payout accepted',
    );
    this.poster.later(this.opts.callbackDelayMs, () => this.deliver(payout));
    return payout;
  }

  /** Accepts a Transaction Status query and schedules its Result; returns the query's own ids. */
  queryStatus(body: TransactionStatusBody, initiatorValid: boolean): { originatorConversationId: string; conversationId: string } {
    const query = { originatorConversationId: dashedId(), conversationId: uniqueFrom(this.usedConversationIds, () => conversationId(this.now())) };
    this.poster.later(this.opts.callbackDelayMs, async () => {
      // Looked up when the Result is written, as M-Pesa would answer at that moment.
      const payout = (body.OriginalConversationID && this.byOriginator.get(body.OriginalConversationID)) || (body.TransactionID && this.byReceipt.get(body.TransactionID)) || undefined;
      const result = statusResultBody(query, payout, initiatorValid, body.Occasion ?? '');
      await this.poster.post(body.ResultURL, result, { statusQuery: query.originatorConversationId, found: Boolean(payout) });
    });
    return query;
  }

  close(): void {
    this.poster.close();
  }

  private async deliver(payout: Payout): Promise<void> {
    const context = { originatorConversationId: payout.originatorConversationId, delivery: payout.delivery };
    switch (payout.delivery) {
      case 'lost':
        return;
      case 'timeout':
        return this.poster.post(payout.timeoutUrl, queueTimeoutBody(payout), context);
      case 'duplicated':
        return this.poster.post(payout.resultUrl, b2cResultBody(payout), context, 2);
      case 'result':
        return this.poster.post(payout.resultUrl, b2cResultBody(payout), context);
    }
  }
}

/** The B2C Result, in Daraja's shape: ResultParameters on success only, ReferenceData always. */
export function b2cResultBody(p: Payout) {
  return {
    Result: {
      ResultType: 0,
      ResultCode: p.resultCode,
      ResultDesc: B2C_RESULT_DESCRIPTIONS[p.resultCode],
      OriginatorConversationID: p.originatorConversationId,
      ConversationID: p.conversationId,
      TransactionID: p.transactionId,
      ...(p.resultCode === 0
        ? {
            ResultParameters: {
              ResultParameter: [
                { Key: 'TransactionAmount', Value: p.amount },
                { Key: 'TransactionReceipt', Value: p.transactionId },
                { Key: 'B2CRecipientIsRegisteredCustomer', Value: 'Y' },
                { Key: 'B2CChargesPaidAccountAvailableFunds', Value: 0 },
                { Key: 'ReceiverPartyPublicName', Value: `${maskMsisdn(p.phone)} - ${RECEIVER_NAME}` },
                { Key: 'TransactionCompletedDateTime', Value: darajaDateTime(p.acceptedAt) },
                { Key: 'B2CUtilityAccountAvailableFunds', Value: p.utilityBalance },
                { Key: 'B2CWorkingAccountAvailableFunds', Value: 0 },
              ],
            },
          }
        : {}),
      ReferenceData: { ReferenceItem: { Key: 'QueueTimeoutURL', Value: SAFARICOM_B2C_QUEUE_URL } },
    },
  };
}

/**
 * What goes to QueueTimeOutURL. Daraja does not document this body; it is modelled on the Result
 * envelope with ResultType 1. Whatever its code says, a queue timeout means "outcome unknown".
 */
export function queueTimeoutBody(p: Payout) {
  return {
    Result: {
      ResultType: 1,
      ResultCode: '1',
      ResultDesc: 'The request timed out while awaiting processing in the queue.',
      OriginatorConversationID: p.originatorConversationId,
      ConversationID: p.conversationId,
    },
  };
}

/**
 * The Transaction Status Result. Its own OriginatorConversationID/ConversationID are the QUERY's; the
 * payout's come as parameters, keys spelled with spaces as in Safaricom's published sample. A payout
 * that failed never became an M-Pesa transaction, so it is "not found", like an unknown id.
 */
export function statusResultBody(query: { originatorConversationId: string; conversationId: string }, payout: Payout | undefined, initiatorValid: boolean, occasion: string) {
  const head = { ResultType: 0, OriginatorConversationID: query.originatorConversationId, ConversationID: query.conversationId };
  const reference = { ReferenceData: { ReferenceItem: { Key: 'Occasion', Value: occasion } } };
  if (!initiatorValid) {
    return { Result: { ...head, ResultCode: 2001, ResultDesc: B2C_RESULT_DESCRIPTIONS[2001], TransactionID: 'NLJ0000000', ...reference } };
  }
  if (!payout || payout.resultCode !== 0) {
    return { Result: { ...head, ResultCode: STATUS_NOT_FOUND.code, ResultDesc: STATUS_NOT_FOUND.desc, TransactionID: 'NLJ0000000', ...reference } };
  }
  const at = Number(darajaTimestamp(payout.acceptedAt));
  return {
    Result: {
      ...head,
      ResultCode: 0,
      ResultDesc: 'The service request is processed successfully.',
      TransactionID: `${payout.transactionId.slice(0, 3)}0000000`,
      ResultParameters: {
        ResultParameter: [
          { Key: 'DebitPartyName', Value: `${payout.partyA} - GOLD WALLET EMULATOR` },
          { Key: 'CreditPartyName', Value: `${maskMsisdn(payout.phone)} - ${RECEIVER_NAME}` },
          { Key: 'Originator Conversation ID', Value: payout.originatorConversationId },
          { Key: 'InitiatedTime', Value: at },
          { Key: 'DebitAccountType', Value: 'Utility Account' },
          { Key: 'DebitPartyCharges', Value: '' },
          { Key: 'TransactionReason' },
          { Key: 'ReasonType', Value: 'Business Payment to Customer via API' },
          { Key: 'TransactionStatus', Value: 'Completed' },
          { Key: 'FinalisedTime', Value: at },
          { Key: 'Amount', Value: payout.amount },
          { Key: 'Conversation ID', Value: payout.conversationId },
          { Key: 'ReceiptNo', Value: payout.transactionId },
        ],
      },
      ...reference,
    },
  };
}
