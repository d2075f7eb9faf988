import { randomUUID } from 'node:crypto';
import express, { Router } from 'express';
import { z } from 'zod';
import { placeChannelBuy, type ChannelBuyResult } from '../../payments/buy/place-channel-buy';
import type { Services } from '../../services';
import { parseOr400 } from '../validate';

const buyBody = z.object({ amountKes: z.number().int().positive(), phoneNumber: z.string().min(9).max(20) });
const idempotencyKey = z.string().regex(/^[A-Za-z0-9_.:-]{8,100}$/, '8 to 100 characters: letters, digits, _ . : -');

/** How each refusal reads over HTTP. */
export function channelBuyStatus(error: Extract<ChannelBuyResult, { ok: false }>['error']): number {
  switch (error) {
    case 'invalid_phone':
    case 'amount_out_of_range':
      return 422;
    case 'idempotency_key_reused':
    case 'payment_pending':
      return 409;
    case 'daily_limit':
      return 422;
    case 'too_many_payments':
      return 429;
    case 'price_unavailable':
      return 503;
  }
}

/**
 * POST /trade/buy: a buy from another channel (an app's backend), behind the ops token, exactly as the
 * seed documents it (`{amountKes, phoneNumber}`). The Idempotency-Key header is optional, as with
 * Stripe: sent, a retried request finds its order instead of charging twice; not sent, every request
 * is a new one (and the one-open-payment-per-phone rule still stops a double prompt).
 */
export function opsTradeRouter(s: Services): Router {
  const router = Router();
  router.post('/trade/buy', express.json({ limit: '4kb' }), async (req, res) => {
    const sent = req.get('idempotency-key');
    const key = sent === undefined ? null : idempotencyKey.safeParse(sent);
    if (key && !key.success) {
      res.status(400).json({ error: 'invalid_idempotency_key', detail: 'the Idempotency-Key header must be 8 to 100 characters: letters, digits, _ . : -' });
      return;
    }
    const body = parseOr400(res, buyBody, req.body ?? {});
    if (!body) return;
    const result = await placeChannelBuy(s, { ...body, sourceKey: key ? `api:${key.data}` : `api-once:${randomUUID()}`, channel: 'api', minKes: s.config.buy.minKes });
    if (!result.ok) {
      res.status(channelBuyStatus(result.error)).json({ error: result.error, detail: result.detail });
      return;
    }
    if (!result.created) res.setHeader('Idempotent-Replayed', 'true');
    if (!key) s.log.debug({ orderId: result.order.orderId }, 'trade buy without an Idempotency-Key');
    res.status(result.created ? 201 : 200).json(result.order);
  });
  return router;
}
