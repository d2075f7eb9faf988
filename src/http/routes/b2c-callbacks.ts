import { Router, type Request, type Response } from 'express';
import type { z } from 'zod';
import type { PayoutCallbackOutcome } from '../../payments/sell/payout-verdict';
import { settleB2cResult, settleQueueTimeout, settleStatusResult } from '../../payments/sell/settle-payout';
import type { Services } from '../../services';
import {
  b2cResultSchema,
  queueTimeoutSchema,
  toB2cResult,
  toQueueTimeout,
  toTransactionStatusResult,
  transactionStatusResultSchema,
} from '../../vendors/daraja-callbacks';
import { callbackGuard, callbackJson } from '../callback-guard';

const ACCEPTED = { ResultCode: 0, ResultDesc: 'Accepted' };

/**
 * Daraja's B2C Result, queue timeout and Transaction Status Result, each at the path of its URL
 * (MPESA_B2C_RESULT_URL, MPESA_B2C_TIMEOUT_URL, MPESA_B2C_STATUS_RESULT_URL) with its secret last
 * segment. Answered `{"ResultCode":0,"ResultDesc":"Accepted"}` once recorded; 400 for a body that is
 * not Daraja's; 503 when nothing could be recorded. Not mounted when selling is switched off.
 */
export function b2cCallbackRouter(s: Services): Router {
  const router = Router();
  const b2c = s.config.b2c;
  if (!b2c) return router;
  mount(router, s, 'b2c result', b2c.resultRoute, b2cResultSchema, (body, raw) => settleB2cResult(s, toB2cResult(body), raw));
  mount(router, s, 'b2c queue timeout', b2c.timeoutRoute, queueTimeoutSchema, (body, raw) => settleQueueTimeout(s, toQueueTimeout(body), raw));
  mount(router, s, 'transaction status result', b2c.statusResultRoute, transactionStatusResultSchema, (body, raw) =>
    settleStatusResult(s, toTransactionStatusResult(body), raw),
  );
  return router;
}

function mount<S extends z.ZodType>(
  router: Router,
  s: Services,
  what: string,
  route: { pathPrefix: string; secret: string },
  schema: S,
  settle: (body: z.output<S>, raw: unknown) => Promise<PayoutCallbackOutcome>,
) {
  const prefix = route.pathPrefix === '/' ? '' : route.pathPrefix;
  router.post(`${prefix}/:secret`, ...callbackGuard(s, route.secret), callbackJson, async (req: Request, res: Response) => {
    const parsed = schema.safeParse(req.body);
    if (!parsed.success) {
      s.log.warn({ callback: what, issues: parsed.error.issues.length }, 'callback rejected: invalid payload');
      res.status(400).json({ ResultCode: 1, ResultDesc: 'Rejected: invalid payload' });
      return;
    }
    try {
      await settle(parsed.data, req.body);
      res.json(ACCEPTED);
    } catch (err) {
      s.log.error({ callback: what, err: (err as Error).message }, 'callback not recorded');
      res.status(503).json({ ResultCode: 1, ResultDesc: 'Temporarily unavailable' });
    }
  });
}
