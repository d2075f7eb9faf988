import { Router, type Request, type Response } from 'express';
import type { Services } from '../../services';
import { stkCallbackSchema, toStkResult } from '../../vendors/daraja-callbacks';
import { callbackGuard, callbackJson } from '../callback-guard';

const ACCEPTED = { ResultCode: 0, ResultDesc: 'Accepted' };

/**
 * Daraja's callbacks are unsigned: the last path segment of MPESA_CALLBACK_URL is the shared secret,
 * compared in constant time (callbackGuard, with the optional IP allowlist). Any other path gets the
 * same 404 as an unknown route.
 */
export function mpesaCallbackRouter(s: Services): Router {
  const router = Router();
  const { callbackPathPrefix, callbackSecret } = s.config.mpesa;
  const prefix = callbackPathPrefix === '/' ? '' : callbackPathPrefix;
  router.post(`${prefix}/:secret`, ...callbackGuard(s, callbackSecret),
    callbackJson,
    async (req: Request, res: Response) => {
      const parsed = stkCallbackSchema.safeParse(req.body);
      if (!parsed.success) {
        s.log.warn({ issues: parsed.error.issues.length }, 'stk callback rejected: invalid payload');
        res.status(400).json({ ResultCode: 1, ResultDesc: 'Rejected: invalid payload' });
        return;
      }
      try {
        // Resolves once the transaction holding this callback committed (alone or in a batch): ack after commit.
        await s.stkCallbacks.settle(toStkResult(parsed.data), req.body);
        res.json(ACCEPTED);
      } catch (err) {
        // Not recorded: say so, so that Safaricom (or reconciliation) tries again.
        s.log.error({ err: (err as Error).message }, 'stk callback not recorded');
        s.metrics.inc('mpesa_callbacks_total', { outcome: 'error' });
        res.status(503).json({ ResultCode: 1, ResultDesc: 'Temporarily unavailable' });
      }
    },
  );
  return router;
}
