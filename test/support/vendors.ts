import nock from 'nock';
import { AT_SANDBOX_HOST, DARAJA_HOST } from './harness';

/** Nock helpers for the vendor edge. They record what our service sent, so tests can check it field by field. */

export function mockDarajaToken(token = 'test-access-token', times = 1) {
  return nock(DARAJA_HOST).get('/oauth/v1/generate').query({ grant_type: 'client_credentials' }).times(times).reply(200, { access_token: token, expires_in: '3599' });
}

export interface CapturedStk {
  body: Record<string, any>;
  headers: Record<string, string | string[] | undefined>;
}

let checkoutCounter = 0;
export function nextCheckoutId() {
  checkoutCounter += 1;
  return `ws_CO_${Date.now()}${checkoutCounter}`;
}

/** Accepts STK Pushes and records each request. */
export function mockStkPushAccepted(captured: CapturedStk[], times = 1) {
  return nock(DARAJA_HOST)
    .post('/mpesa/stkpush/v1/processrequest')
    .times(times)
    .reply(function (_uri, body) {
      captured.push({ body: body as Record<string, any>, headers: this.req.headers });
      const checkoutRequestId = nextCheckoutId();
      return [200, { MerchantRequestID: `mr-${checkoutRequestId}`, CheckoutRequestID: checkoutRequestId, ResponseCode: '0', ResponseDescription: 'Success. Request accepted for processing', CustomerMessage: 'Success. Request accepted for processing' }];
    });
}

export interface CapturedSms {
  form: URLSearchParams;
  headers: Record<string, string | string[] | undefined>;
}

/** The number an Africa's Talking send is for (nock hands a form body over parsed, or as text), without its +. */
function recipientOf(body: unknown): string | undefined {
  const to = typeof body === 'string' ? new URLSearchParams(body).get('to') : (body as Record<string, unknown> | null)?.to;
  return typeof to === 'string' ? to.replace(/^\+/, '') : undefined;
}

/**
 * Africa's Talking accepts SMS (201) and records each form body. `toMsisdn`: only an SMS to this number takes the
 * interceptor, so an SMS of an earlier test still on its way (a busy machine) cannot use it up.
 */
export function mockAtSmsAccepted(captured: CapturedSms[], host = AT_SANDBOX_HOST, times = 1, toMsisdn?: string) {
  return nock(host)
    .post('/version1/messaging', toMsisdn ? (body: unknown) => recipientOf(body) === toMsisdn : undefined)
    .times(times)
    .reply(function (_uri, body) {
      const form = new URLSearchParams(typeof body === 'string' ? body : '');
      captured.push({ form, headers: this.req.headers });
      return [201, { SMSMessageData: { Message: 'Sent to 1/1 Total Cost: KES 0.8000', Recipients: [{ statusCode: 101, number: form.get('to'), status: 'Success', cost: 'KES 0.8000', messageId: `ATXid_${captured.length}_${Date.now()}` }] } }];
    });
}

export function stkCallbackBody(p: { checkoutRequestId: string; resultCode: number; resultDesc?: string; amount?: number; receipt?: string; phone?: number | string }) {
  const stkCallback: Record<string, unknown> = {
    MerchantRequestID: `mr-${p.checkoutRequestId}`,
    CheckoutRequestID: p.checkoutRequestId,
    ResultCode: p.resultCode,
    ResultDesc: p.resultDesc ?? (p.resultCode === 0 ? 'The service request is processed successfully.' : 'Request failed'),
  };
  if (p.resultCode === 0) {
    stkCallback.CallbackMetadata = {
      Item: [
        { Name: 'Amount', Value: p.amount },
        { Name: 'MpesaReceiptNumber', Value: p.receipt },
        { Name: 'Balance' },
        { Name: 'TransactionDate', Value: 20261126102115 },
        { Name: 'PhoneNumber', Value: typeof p.phone === 'string' ? Number(p.phone) : p.phone },
      ],
    };
  }
  return { Body: { stkCallback } };
}
