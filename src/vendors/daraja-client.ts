import axios, { AxiosInstance } from 'axios';
import type { Redis } from 'ioredis';
import type { Config } from '../config';
import { VendorError } from '../lib/errors';
import type { Msisdn } from '../lib/msisdn';
import { classifyDarajaFailure, networkFailure, parseBody } from './daraja-errors';
import { darajaPassword, darajaTimestamp } from './daraja-time';
import { DarajaTokenCache } from './daraja-token';

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

/** One client for Daraja: builds requests exactly as Safaricom documents them and returns our own types. */
export class DarajaClient {
  private readonly http: AxiosInstance;
  private readonly tokens: DarajaTokenCache;

  constructor(
    private readonly config: Config['mpesa'],
    redis: Redis,
    keyPrefix: string,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.http = axios.create({
      baseURL: config.baseUrl,
      timeout: config.httpTimeoutMs,
      // Never assume JSON: the gateway sometimes answers HTML or plain text.
      transformResponse: [(raw) => raw],
      validateStatus: () => true,
    });
    this.tokens = new DarajaTokenCache(redis, this.http, config, keyPrefix);
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

  /** POST with the shared token; an invalid-token answer refreshes the token once and tries again. */
  private async authorizedPost(path: string, body: unknown): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      const token = await this.tokens.get();
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
