import express, { Router, type NextFunction, type Request, type Response } from 'express';
import type { StkSession, StkSessions } from './stk-sessions';
import { normaliseMsisdn } from './wire';

/** PIN the phone simulator can type to get a wrong-PIN outcome (2001). */
export const WRONG_PIN = '9999';

/**
 * Not part of Daraja: the phone simulator's side of a human prompt. It lists the prompts open on a
 * phone and answers them with a PIN or a cancel; the emulator then posts the callback at once.
 */
export function promptRouter(sessions: StkSessions): Router {
  const router = Router();
  router.use('/prompts', express.json({ limit: '4kb' }));

  router.get('/prompts', (req, res) => {
    const phone = typeof req.query.phone === 'string' ? normaliseMsisdn(req.query.phone) : null;
    if (!phone) return void res.status(400).json({ error: 'invalid_phone' });
    res.json({ prompts: sessions.openPromptsFor(phone).map(describePrompt) });
  });

  router.post('/prompts/:id/pin', (req, res) => {
    const session = sessions.findOpenPrompt(String(req.params.id));
    if (!session) return void res.status(404).json({ error: 'prompt_not_found' });
    const pin: unknown = req.body?.pin;
    if (typeof pin !== 'string' || !/^\d{4}$/.test(pin)) return void res.status(400).json({ error: 'invalid_pin' });
    const final = sessions.decide(session, pin === WRONG_PIN ? 2001 : 0);
    if (!final) return void res.status(404).json({ error: 'prompt_not_found' });
    res.json(final.receipt ? { result: 'paid', receipt: final.receipt } : { result: 'wrong_pin' });
  });

  router.post('/prompts/:id/cancel', (req, res) => {
    const session = sessions.findOpenPrompt(String(req.params.id));
    if (!session || !sessions.decide(session, 1032)) return void res.status(404).json({ error: 'prompt_not_found' });
    res.json({ result: 'cancelled' });
  });

  // Malformed JSON from the simulator is its own mistake: 400, in this API's shape.
  router.use('/prompts', (err: { status?: number; type?: string }, _req: Request, res: Response, next: NextFunction) => {
    if (err.status && err.status >= 400 && err.status < 500) return void res.status(err.status).json({ error: err.type ?? 'bad_request' });
    next(err);
  });
  return router;
}

function describePrompt(s: StkSession) {
  return {
    id: s.checkoutRequestId,
    phone: s.phone,
    amount: s.amount,
    accountReference: s.accountReference,
    transactionDesc: s.transactionDesc,
    businessShortCode: s.businessShortCode,
    createdAt: s.createdAt.toISOString(),
    expiresAt: s.humanPromptExpiresAt!.toISOString(),
  };
}
