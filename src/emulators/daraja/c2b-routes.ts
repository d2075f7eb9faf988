import { randomUUID } from 'node:crypto';
import express, { Router, type Request, type Response } from 'express';
import { registerUrlSchema, simulateSchema, type C2bPaybill } from './c2b-paybill';
import { blamedField } from './stk-requests';
import { normaliseMsisdn, sendEnvelope, sendInvalidField } from './wire';

/** Handlers for C2B register URL (v1 and v2) and simulate; the Bearer token was checked before they run. */
export function c2bHandlers(paybill: C2bPaybill) {
  /** POST /mpesa/c2b/v1/registerurl and /mpesa/c2b/v2/registerurl */
  function registerUrl(req: Request, res: Response): void {
    const parsed = registerUrlSchema.safeParse(req.body);
    if (!parsed.success) return sendInvalidField(res, blamedField(parsed.error));
    paybill.register(parsed.data);
    res.json({ OriginatorCoversationID: randomUUID(), ResponseCode: '0', ResponseDescription: 'Success' });
  }

  /** POST /mpesa/c2b/v1/simulate: a customer pays from the M-Pesa menu (Daraja's sandbox only). */
  function simulate(req: Request, res: Response): void {
    const parsed = simulateSchema.safeParse(req.body);
    if (!parsed.success) return sendInvalidField(res, blamedField(parsed.error));
    const accepted = paybill.simulate(parsed.data);
    if (!accepted) return sendEnvelope(res, 400, '400.002.02', 'Bad Request - No URLs registered for this ShortCode');
    res.json({ OriginatorCoversationID: randomUUID(), ResponseCode: '0', ResponseDescription: 'Accept the service request successfully.' });
  }

  return { registerUrl, simulate };
}

/**
 * Not part of Daraja: the phone simulator's side of "Lipa na M-Pesa -> Paybill". A phone paying from
 * its M-Pesa menu holds no Daraja token, so it does not call /mpesa/c2b/v1/simulate itself; this
 * route takes the menu's four answers and runs the very same simulation (validation, then confirmation).
 */
export function paybillPhoneRouter(paybill: C2bPaybill): Router {
  const router = Router();
  router.post('/phone/paybill', express.json({ limit: '4kb' }), (req: Request, res: Response) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const phone = typeof body.phone === 'string' ? normaliseMsisdn(body.phone) : null;
    const parsed = simulateSchema.safeParse({
      ShortCode: body.businessNumber,
      CommandID: 'CustomerPayBillOnline',
      Amount: body.amount,
      Msisdn: phone ?? '',
      BillRefNumber: body.accountNumber,
    });
    if (!parsed.success) return void res.status(400).json({ error: 'invalid_request', field: blamedField(parsed.error) });
    const accepted = paybill.simulate(parsed.data);
    if (!accepted) return void res.status(404).json({ error: 'no_such_paybill' });
    res.json({ result: 'sent', transId: accepted.transId });
  });
  return router;
}
