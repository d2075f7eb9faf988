import { Router, type Request, type Response } from 'express';
import type { Services } from '../../services';
import { stkCallbackSchema, toStkResult } from '../../vendors/daraja-callbacks';
import { callbackGuard, callbackJson } from '../callback-guard';

const ACCEPTED = { ResultCode: 0, ResultDesc: 'Accepted' };

/**
 * Daraja's callbacks are unsigned: the last path segment of MPESA_CALLBACK_URL is the shared secret,
 * compared in constant time (callbackGuard, with the optional IP allowlist). Any other path gets the
 * same 404 as an unknown route. The plain case is answered before express (stk-callback-fast-path.ts),
 * with the same answerStkCallback.
 */
export function mpesaCallbackRouter(s: Services): Router {
  const router = Router();
  router.post(`${stkCallbackPath(s)}:secret`, ...callbackGuard(s, s.config.mpesa.callbackSecret), callbackJson, async (req: Request, res: Response) => {
    const { status, body } = await answerStkCallback(s, req.body);
    res.status(status).json(body);
  });
  return router;
}

/** What precedes the secret segment: MPESA_CALLBACK_URL's path without it, ending in `/`. */
export function stkCallbackPath(s: Pick<Services, 'config'>): string {
  const { callbackPathPrefix } = s.config.mpesa;
  return callbackPathPrefix === '/' ? '/' : `${callbackPathPrefix}/`;
}

/** What an STK callback gets back, once its body was read: 400 for a payload that is not one, else 200 after commit. */
export async function answerStkCallback(s: Services, payload: unknown): Promise<{ status: number; body: object }> {
  const parsed = stkCallbackSchema.safeParse(payload);
  if (!parsed.success) {
    s.log.warn({ issues: parsed.error.issues.length }, 'stk callback rejected: invalid payload');
    return { status: 400, body: { ResultCode: 1, ResultDesc: 'Rejected: invalid payload' } };
  }
  try {
    // Resolves once the transaction holding this callback committed (alone or in a batch): ack after commit.
    await s.stkCallbacks.settle(toStkResult(parsed.data), payload);
    return { status: 200, body: ACCEPTED };
  } catch (err) {
    // Not recorded: say so, so that Safaricom (or reconciliation) tries again.
    s.log.error({ err: (err as Error).message }, 'stk callback not recorded');
    s.metrics.inc('mpesa_callbacks_total', { outcome: 'error' });
    return { status: 503, body: { ResultCode: 1, ResultDesc: 'Temporarily unavailable' } };
  }
}
