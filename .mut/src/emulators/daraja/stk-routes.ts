import type { Request, Response } from 'express';
import { blamedField, passwordMatches, stkPushSchema, stkQuerySchema } from './stk-requests';
import type { StkSessions } from './stk-sessions';
import { sendEnvelope, sendInvalidField } from './wire';

const ACCEPTED = 'Success. Request accepted for processing';

/** Handlers for STK Push and STK Query; the Bearer token was checked before they run. */
export function stkHandlers(deps: { shortcode: string; passkey: string; now: () => Date; sessions: StkSessions }) {
  const pushSchema = stkPushSchema(deps.shortcode, deps.now);
  const querySchema = stkQuerySchema(deps.shortcode, deps.now);

  /** POST /mpesa/stkpush/v1/processrequest */
  function push(req: Request, res: Response): void {
    const parsed = pushSchema.safeParse(req.body);
    if (!parsed.success) return sendInvalidField(res, blamedField(parsed.error));
    if (!passwordMatches(parsed.data, deps.passkey)) return sendEnvelope(res, 500, '500.001.1001', 'Wrong credentials');
    if (deps.sessions.isLocked(parsed.data.PhoneNumber)) {
      return sendEnvelope(res, 500, '500.001.1001', 'Unable to lock subscriber, a transaction is already in process for the current subscriber');
    }
    const session = deps.sessions.start(parsed.data);
    res.json({
      MerchantRequestID: session.merchantRequestId,
      CheckoutRequestID: session.checkoutRequestId,
      ResponseCode: '0',
      ResponseDescription: ACCEPTED,
      CustomerMessage: ACCEPTED,
    });
  }

  /** POST /mpesa/stkpushquery/v1/query: no receipt and no amount, ResultCode as a string. */
  function query(req: Request, res: Response): void {
    const parsed = querySchema.safeParse(req.body);
    if (!parsed.success) return sendInvalidField(res, blamedField(parsed.error));
    if (!passwordMatches(parsed.data, deps.passkey)) return sendEnvelope(res, 500, '500.001.1001', 'Wrong credentials');
    const session = deps.sessions.find(parsed.data.CheckoutRequestID);
    if (!session) return sendInvalidField(res, 'CheckoutRequestID');
    if (!session.final) return sendEnvelope(res, 500, '500.001.1001', 'The transaction is being processed');
    res.json({
      ResponseCode: '0',
      ResponseDescription: 'The service request has been accepted successsfully', // Daraja's spelling
      MerchantRequestID: session.merchantRequestId,
      CheckoutRequestID: session.checkoutRequestId,
      ResultCode: String(session.final.resultCode),
      ResultDesc: session.final.resultDesc,
    });
  }

  return { push, query };
}
