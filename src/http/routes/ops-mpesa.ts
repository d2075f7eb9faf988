import express, { Router } from 'express';
import { z } from 'zod';
import { requestLiveStkQuery } from '../../ops/live-stk-query';
import { paymentRecordByCheckoutId } from '../../ops/payment-record';
import { placeTestStk } from '../../ops/test-stk';
import type { Services } from '../../services';
import { channelBuyStatus } from './ops-trade';
import { parseOr400 } from '../validate';

const checkoutId = z.string().regex(/^[A-Za-z0-9_.-]{1,100}$/);
const testStkBody = z.object({ phoneNumber: z.string().min(9).max(20), amount: z.number().int().positive() });

/** Behind the ops token (see ops.ts). */
export function opsMpesaRouter(s: Services): Router {
  const router = Router();

  router.get('/mpesa/status/:checkoutRequestId', async (req, res) => {
    const id = checkoutId.safeParse(req.params.checkoutRequestId);
    if (!id.success) {
      res.status(400).json({ error: 'invalid_checkout_request_id' });
      return;
    }
    const record = await paymentRecordByCheckoutId(s.db, id.data);
    if (req.query.live !== '1') {
      if (!record) res.status(404).json({ error: 'not_found' });
      else res.json(record);
      return;
    }
    const live = await requestLiveStkQuery(s, id.data, s.config.ops.queryTimeoutMs);
    if (!live.answered) {
      res.status(504).json({ error: 'query_timeout', detail: `no worker answered within ${s.config.ops.queryTimeoutMs} ms`, record });
      return;
    }
    // A Daraja failure is an answer (502), shown beside our own record.
    res.status(live.result.state === 'error' ? 502 : 200).json({ ...(record ?? { checkoutRequestId: id.data, order: null }), live: live.result });
  });

  router.post('/mpesa/test-stk', express.json({ limit: '4kb' }), async (req, res) => {
    const body = parseOr400(res, testStkBody, req.body ?? {});
    if (!body) return;
    const result = await placeTestStk(s, { phoneNumber: body.phoneNumber, amountKes: body.amount });
    if (!result.ok) {
      res.status(result.error === 'test_stk_disabled' ? 403 : channelBuyStatus(result.error)).json({ error: result.error, detail: result.detail });
      return;
    }
    res.status(202).json(result.order);
  });

  return router;
}
