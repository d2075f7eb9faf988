import { Router, type Request, type Response } from 'express';
import { confirmC2b } from '../../payments/c2b/confirm-c2b';
import { c2bPayloadSchema, validateC2b } from '../../payments/c2b/c2b-payload';
import type { Services } from '../../services';
import { callbackGuard, callbackJson } from '../callback-guard';

const CONFIRMED = { ResultCode: '0', ResultDesc: 'Accepted' };
const INVALID = { ResultCode: 'C2B00016', ResultDesc: 'Rejected: invalid payload' };

/**
 * Daraja's C2B (Pay by Paybill) validation and confirmation, each at the path of its URL
 * (MPESA_C2B_VALIDATION_URL, MPESA_C2B_CONFIRMATION_URL) behind the callback guard (IP allowlist,
 * secret last segment, capped JSON). Not mounted when C2B is off.
 *  - validation: accept or reject (C2B00012 account, C2B00013 amount); records nothing;
 *  - confirmation: 200 only once the payment is committed (credited or in review); 400 for a body
 *    that is not Daraja's; 503 when nothing could be recorded, so Safaricom tries again.
 */
export function c2bCallbackRouter(s: Services): Router {
  const router = Router();
  const c2b = s.config.c2b;
  if (!c2b) return router;
  const at = (route: { pathPrefix: string }) => `${route.pathPrefix === '/' ? '' : route.pathPrefix}/:secret`;

  router.post(at(c2b.validationRoute), ...callbackGuard(s, c2b.validationRoute.secret), callbackJson, (req: Request, res: Response) => {
    const parsed = c2bPayloadSchema.safeParse(req.body);
    if (!parsed.success) {
      s.log.warn({ issues: parsed.error.issues.length }, 'c2b validation rejected: invalid payload');
      res.status(400).json(INVALID);
      return;
    }
    const answer = validateC2b(parsed.data, s.config.buy);
    s.log.info({ transId: parsed.data.TransID, resultCode: answer.ResultCode }, 'c2b validation');
    res.json(answer);
  });

  router.post(at(c2b.confirmationRoute), ...callbackGuard(s, c2b.confirmationRoute.secret), callbackJson, async (req: Request, res: Response) => {
    const parsed = c2bPayloadSchema.safeParse(req.body);
    if (!parsed.success) {
      s.log.warn({ issues: parsed.error.issues.length }, 'c2b confirmation rejected: invalid payload');
      res.status(400).json(INVALID);
      return;
    }
    try {
      await confirmC2b(s, parsed.data, req.body);
      res.json(CONFIRMED);
    } catch (err) {
      // Not recorded: say so, so that Safaricom tries again.
      s.log.error({ transId: parsed.data.TransID, err: (err as Error).message }, 'c2b confirmation not recorded');
      res.status(503).json({ ResultCode: '1', ResultDesc: 'Temporarily unavailable' });
    }
  });
  return router;
}
