import express, { Router, type Request, type Response } from 'express';
import { C2B_SPOOL_ATTEMPTS } from '../../infra/queues';
import { c2bPayloadSchema, validateC2b } from '../../payments/c2b/c2b-payload';
import { bodyDigest, rawTransId, recordC2bConfirmation } from '../../payments/c2b/record-c2b-confirmation';
import type { Services } from '../../services';
import { CALLBACK_BODY_LIMIT, callbackGuard, callbackJson } from '../callback-guard';

const CONFIRMED = { ResultCode: '0', ResultDesc: 'Accepted' };
/**
 * A confirmation is money that has arrived: a NUL in it is not a reason to refuse it (as other
 * callbacks do), recordC2bConfirmation stores it as U+FFFD.
 */
const confirmationJson = express.json({ limit: CALLBACK_BODY_LIMIT });
const INVALID = { ResultCode: 'C2B00016', ResultDesc: 'Rejected: invalid payload' };

/**
 * Daraja's C2B (Pay by Paybill) validation and confirmation, each at the path of its URL
 * (MPESA_C2B_VALIDATION_URL, MPESA_C2B_CONFIRMATION_URL) behind the callback guard (IP allowlist,
 * secret last segment, capped JSON). Not mounted when C2B is off.
 *  - validation: accept or reject (C2B00012 account, C2B00013 amount, C2B00015 shortcode); records nothing;
 *  - confirmation: 200 once the payment is committed (credited, in review, or a body we cannot read
 *    kept with an alert: the money has arrived either way); 503 when the database is down, after
 *    spooling the body to the c2b-confirmation queue, which records it once the database is back.
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
    const answer = validateC2b(parsed.data, s.config.buy, c2b.shortcode);
    s.log.info({ transId: parsed.data.TransID, resultCode: answer.ResultCode }, 'c2b validation');
    res.json(answer);
  });

  router.post(at(c2b.confirmationRoute), ...callbackGuard(s, c2b.confirmationRoute.secret), confirmationJson, async (req: Request, res: Response) => {
    try {
      await recordC2bConfirmation(s, req.body);
      res.json(CONFIRMED);
    } catch (err) {
      // Postgres is down: the confirmation waits in a queue until it can be recorded, and Safaricom is
      // told to try again too (the TransID makes whichever comes second a duplicate).
      const spooled = await spool(s, req.body);
      s.log.error({ transId: rawTransId(req.body), spooled, err: (err as Error).message }, 'c2b confirmation not recorded');
      res.status(503).json({ ResultCode: '1', ResultDesc: 'Temporarily unavailable' });
    }
  });
  return router;
}

/** One job per distinct body (a repeat while Postgres is down adds nothing). False when the queue is down too. */
async function spool(s: Services, body: unknown): Promise<boolean> {
  try {
    await s.queues['c2b-confirmation'].add('c2b-confirmation', { body }, { jobId: `c2b-${bodyDigest(body)}`, attempts: C2B_SPOOL_ATTEMPTS });
    return true;
  } catch {
    return false;
  }
}
