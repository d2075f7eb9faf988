import axios, { AxiosInstance } from 'axios';
import type { Config } from '../config';
import type { KeyValueStore } from '../infra/kv-store';
import { VendorError } from '../lib/errors';
import { NON_NUMERIC_RESULT_CODE } from './daraja-callbacks';
import { classifyDarajaFailure, networkFailure, notSent, parseBody } from './daraja-errors';
import { darajaPassword, darajaTimestamp } from './daraja-time';
import { DarajaTokenCache } from './daraja-token';

import { B2C_MAX_KES, B2C_MIN_KES, type B2cPaymentAccepted, type B2cPaymentRequest, type B2cSettings, type StkPushAccepted, type StkPushRequest, type StkQueryResult, type TransactionStatusAccepted } from './daraja-types';

export { B2C_MAX_KES, B2C_MIN_KES };
export type { B2cPaymentAccepted, B2cPaymentRequest, B2cSettings, StkPushAccepted, StkPushRequest, StkQueryResult, TransactionStatusAccepted };

/** One client for Daraja: builds requests exactly as Safaricom documents them and returns our own types. */
export class DarajaClient {
  private readonly http: AxiosInstance;
  private readonly tokens: DarajaTokenCache;

  constructor(
    private readonly config: Config['mpesa'],
    store: KeyValueStore,
    keyPrefix: string,
    private readonly now: () => Date = () => new Date(),
    private readonly b2c?: B2cSettings,
  ) {
    this.http = axios.create({
      baseURL: config.baseUrl,
      timeout: config.httpTimeoutMs,
      // Never assume JSON: the gateway sometimes answers HTML or plain text.
      transformResponse: [(raw) => raw],
      validateStatus: () => true,
      // A payment request is never sent on to another address: a redirect is an answer, not a hop (classified as a
      // gateway's error page is: maybe processed). It also spares every request axios's redirect-following wrapper.
      maxRedirects: 0,
    });
    this.tokens = new DarajaTokenCache(store, this.http, config, keyPrefix);
  }

  async stkPush(req: StkPushRequest): Promise<StkPushAccepted> {
    if (!Number.isSafeInteger(req.amountKes) || req.amountKes < 1) throw new RangeError('STK amount must be whole KES >= 1');
    // One timestamp for both the Password and the Timestamp field; a mismatch reads as wrong credentials.
    const timestamp = darajaTimestamp(this.now());
    const body = {
      BusinessShortCode: this.config.shortcode,
      Password: darajaPassword(this.config.shortcode, this.config.passkey, timestamp),
      Timestamp: timestamp,
      TransactionType: this.config.transactionType,
      Amount: req.amountKes,
      PartyA: req.msisdn,
      PartyB: this.config.partyB,
      PhoneNumber: req.msisdn,
      CallBackURL: this.config.callbackUrl,
      AccountReference: req.accountReference.slice(0, 12),
      TransactionDesc: req.description.slice(0, 13),
    };
    const res = await this.authorizedPost('/mpesa/stkpush/v1/processrequest', body);
    const r = res as { ResponseCode?: unknown; MerchantRequestID?: unknown; CheckoutRequestID?: unknown; ResponseDescription?: unknown };
    if (String(r.ResponseCode) !== '0' || typeof r.CheckoutRequestID !== 'string' || typeof r.MerchantRequestID !== 'string') {
      throw new VendorError('daraja', 'permanent', `response_${String(r.ResponseCode)}`, String(r.ResponseDescription ?? 'STK Push not accepted'), 200);
    }
    return { merchantRequestId: r.MerchantRequestID, checkoutRequestId: r.CheckoutRequestID };
  }

  /** Asks what became of an STK Push; see StkQueryResult. */
  async stkQuery(checkoutRequestId: string): Promise<StkQueryResult> {
    const timestamp = darajaTimestamp(this.now());
    const body = {
      BusinessShortCode: this.config.shortcode,
      Password: darajaPassword(this.config.shortcode, this.config.passkey, timestamp),
      Timestamp: timestamp,
      CheckoutRequestID: checkoutRequestId,
    };
    let res: unknown;
    try {
      res = await this.authorizedPost('/mpesa/stkpushquery/v1/query', body);
    } catch (err) {
      // 500.001.1001 also means "wrong credentials" and "unable to lock subscriber": only the
      // "being processed" wording is the pending state; the rest stay retryable errors.
      if (err instanceof VendorError && err.code === '500.001.1001' && STILL_PROCESSING.test(err.message)) return { state: 'pending' };
      throw err;
    }
    const r = res as { ResponseCode?: unknown; ResponseDescription?: unknown; CheckoutRequestID?: unknown; ResultCode?: unknown; ResultDesc?: unknown };
    if (String(r.ResponseCode) !== '0') {
      throw new VendorError('daraja', 'permanent', `response_${String(r.ResponseCode)}`, String(r.ResponseDescription ?? 'STK Query not accepted'), 200);
    }
    if (r.CheckoutRequestID !== undefined && r.CheckoutRequestID !== checkoutRequestId) {
      throw new VendorError('daraja', 'permanent', 'checkout_id_mismatch', 'STK Query answered for another CheckoutRequestID', 200);
    }
    const resultCodeText = typeof r.ResultCode === 'number' || typeof r.ResultCode === 'string' ? String(r.ResultCode).trim() : '';
    if (!/^-?\d{1,9}$|^[A-Za-z][A-Za-z0-9_.]{0,39}$/.test(resultCodeText)) {
      throw new VendorError('daraja', 'permanent', 'malformed_response', 'STK Query answer without a usable ResultCode', 200);
    }
    const resultDesc = typeof r.ResultDesc === 'string' ? r.ResultDesc : '';
    // Integrators report a 200 with ResultCode 4999 "still under processing" instead of the envelope.
    if (resultCodeText === '4999' || STILL_PROCESSING.test(resultDesc)) return { state: 'pending' };
    const resultCode = /^-?\d{1,9}$/.test(resultCodeText) ? Number(resultCodeText) : NON_NUMERIC_RESULT_CODE;
    return { state: 'final', resultCode, resultCodeText, resultDesc };
  }

  /**
   * Sends money to a customer. Safe to retry with the same originatorConversationId after ANY failure
   * (timeout, retry-kind VendorError): Daraja refuses a second request with that id, which comes back
   * as `{ duplicate: true }` (see B2cPaymentAccepted). Acceptance only means queued: the outcome
   * arrives at resultUrl (or a queue timeout at timeoutUrl).
   */
  async b2cPayment(req: B2cPaymentRequest): Promise<B2cPaymentAccepted> {
    const b2c = this.requireB2c('b2cPayment');
    if (!Number.isSafeInteger(req.amountKes) || req.amountKes < B2C_MIN_KES || req.amountKes > B2C_MAX_KES) {
      throw new RangeError(`B2C amount must be whole KES ${B2C_MIN_KES}..${B2C_MAX_KES}`);
    }
    if (req.remarks.length < 2 || req.remarks.length > 100) throw new RangeError('B2C Remarks must be 2 to 100 characters');
    if (req.occasion !== undefined && req.occasion.length > 100) throw new RangeError('B2C Occassion must be at most 100 characters');
    if (req.originatorConversationId.length === 0 || req.originatorConversationId.length > 100) {
      throw new RangeError('B2C OriginatorConversationID must be 1 to 100 characters');
    }
    const body = {
      OriginatorConversationID: req.originatorConversationId,
      InitiatorName: b2c.initiatorName,
      SecurityCredential: b2c.securityCredential,
      CommandID: 'BusinessPayment',
      Amount: req.amountKes,
      PartyA: b2c.shortcode,
      PartyB: req.msisdn,
      Remarks: req.remarks,
      QueueTimeOutURL: b2c.timeoutUrl,
      ResultURL: b2c.resultUrl,
      Occassion: req.occasion ?? '', // sic: Daraja's spelling
    };
    let res: unknown;
    try {
      res = await this.authorizedPost('/mpesa/b2c/v3/paymentrequest', body);
    } catch (err) {
      if (err instanceof VendorError && isDuplicateOriginator(err)) return { duplicate: true, originatorConversationId: req.originatorConversationId };
      throw err;
    }
    const r = res as { ResponseCode?: unknown; ResponseDescription?: unknown; ConversationID?: unknown };
    if (String(r.ResponseCode) !== '0' || typeof r.ConversationID !== 'string' || r.ConversationID.length === 0) {
      throw new VendorError('daraja', 'permanent', `response_${String(r.ResponseCode)}`, String(r.ResponseDescription ?? 'B2C not accepted'), 200);
    }
    // Our own id, not the echo: some Daraja answers misspell the field (OriginatorCoversationID).
    return { duplicate: false, conversationId: r.ConversationID, originatorConversationId: req.originatorConversationId };
  }

  /**
   * Asks M-Pesa what became of a payout, by the OriginatorConversationID we sent (and its receipt, when
   * known). Only the acknowledgement is synchronous; the result is posted to statusResultUrl.
   */
  async transactionStatus(req: { originatorConversationId: string; transactionId?: string; remarks?: string }): Promise<TransactionStatusAccepted> {
    const b2c = this.requireB2c('transactionStatus');
    const body = {
      Initiator: b2c.initiatorName,
      SecurityCredential: b2c.securityCredential,
      CommandID: 'TransactionStatusQuery',
      // Sent only when known: the OriginalConversationID is what finds a payout whose result we never got.
      ...(req.transactionId ? { TransactionID: req.transactionId } : {}),
      OriginalConversationID: req.originatorConversationId,
      PartyA: b2c.shortcode,
      IdentifierType: '4', // 4 = organisation shortcode
      ResultURL: b2c.statusResultUrl,
      QueueTimeOutURL: b2c.timeoutUrl,
      Remarks: (req.remarks ?? 'Payout status check').slice(0, 100),
      Occasion: '', // spelled correctly on this API
    };
    const res = await this.authorizedPost('/mpesa/transactionstatus/v1/query', body);
    const r = res as { ResponseCode?: unknown; ResponseDescription?: unknown; ConversationID?: unknown; OriginatorConversationID?: unknown; OriginatorCoversationID?: unknown };
    if (String(r.ResponseCode) !== '0') {
      throw new VendorError('daraja', 'permanent', `response_${String(r.ResponseCode)}`, String(r.ResponseDescription ?? 'Transaction Status not accepted'), 200);
    }
    const originator = r.OriginatorConversationID ?? r.OriginatorCoversationID;
    return {
      state: 'accepted',
      queryConversationId: typeof r.ConversationID === 'string' ? r.ConversationID : undefined,
      queryOriginatorConversationId: typeof originator === 'string' ? originator : undefined,
    };
  }

  private requireB2c(method: string): B2cSettings {
    if (!this.b2c) throw new Error(`DarajaClient.${method} needs the B2C settings (the constructor's b2c parameter)`);
    return this.b2c;
  }

  /** POST with the shared token; an invalid-token answer refreshes the token once and tries again. */
  private async authorizedPost(path: string, body: unknown): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      let token: string;
      try {
        token = await this.tokens.get();
      } catch (err) {
        // However the token fetch failed, this request itself never left.
        throw err instanceof VendorError ? notSent(err) : err;
      }
      let res;
      try {
        res = await this.http.post(path, body, { headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' } });
      } catch (err) {
        throw networkFailure(err);
      }
      const parsed = parseBody(res.data);
      if (res.status >= 200 && res.status < 300 && typeof parsed === 'object' && parsed !== null && !('errorCode' in parsed)) return parsed;
      const failure = classifyDarajaFailure(res.status, parsed);
      if (failure.kind === 'invalid_token' && attempt === 0) {
        await this.tokens.invalidate(token);
        continue;
      }
      throw failure.kind === 'invalid_token' ? new VendorError('daraja', 'retry', failure.code, failure.message, failure.httpStatus) : failure;
    }
  }
}

const STILL_PROCESSING = /being processed|still under processing/i;

/**
 * "500.002.1001 Duplicate OriginatorConversationID". The code alone decides; the wording is a fallback
 * for a gateway that changes codes. Erring towards "duplicate" is the safe side for money going out:
 * the worst case is a payout wrongly held as in flight, which Transaction Status then settles, whereas
 * the opposite error would invite paying twice.
 */
function isDuplicateOriginator(err: VendorError): boolean {
  return err.code === '500.002.1001' || /duplicate\s*originator/i.test(err.message);
}
