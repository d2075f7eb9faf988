import type { Request, Response } from 'express';
import { b2cPaymentSchema, transactionStatusSchema } from './b2c-requests';
import type { B2cPayouts } from './b2c-payouts';
import type { InitiatorCheck } from './initiator';
import { blamedField } from './stk-requests';
import { sendEnvelope, sendInvalidField } from './wire';

const ACCEPTED = 'Accept the service request successfully.';

/** Handlers for B2C and Transaction Status; the Bearer token was checked before they run. */
export function b2cHandlers(deps: { b2cShortcode: string | undefined; initiator: InitiatorCheck; payouts: B2cPayouts }) {
  const paymentSchema = b2cPaymentSchema(deps.b2cShortcode);
  const statusSchema = transactionStatusSchema(deps.b2cShortcode);

  /** POST /mpesa/b2c/v3/paymentrequest */
  function payment(req: Request, res: Response): void {
    const parsed = paymentSchema.safeParse(req.body);
    if (!parsed.success) return sendInvalidField(res, blamedField(parsed.error));
    const body = parsed.data;
    // The idempotency key: a reused id is refused whatever else the request says.
    if (deps.payouts.isDuplicate(body.OriginatorConversationID)) return sendEnvelope(res, 500, '500.002.1001', 'Duplicate OriginatorConversationID');
    const payout = deps.payouts.accept(body, deps.initiator.accepts(body.InitiatorName, body.SecurityCredential));
    res.json({
      ConversationID: payout.conversationId,
      OriginatorConversationID: payout.originatorConversationId,
      ResponseCode: '0',
      ResponseDescription: ACCEPTED,
    });
  }

  /** POST /mpesa/transactionstatus/v1/query: acknowledged at once, the Result goes to ResultURL. */
  function status(req: Request, res: Response): void {
    const parsed = statusSchema.safeParse(req.body);
    if (!parsed.success) return sendInvalidField(res, blamedField(parsed.error));
    const query = deps.payouts.queryStatus(parsed.data, deps.initiator.accepts(parsed.data.Initiator, parsed.data.SecurityCredential));
    res.json({ OriginatorConversationID: query.originatorConversationId, ConversationID: query.conversationId, ResponseCode: '0', ResponseDescription: ACCEPTED });
  }

  return { payment, status };
}
