import express, { Router } from 'express';
import { z } from 'zod';
import { acceptPausedPrice } from '../../prices/price-jump';
import { HttpPriceFeed } from '../../prices/price-source';
import type { Services } from '../../services';

const acceptBody = z.object({
  note: z.string().trim().min(1).max(1000),
  operator: z.string().trim().min(1).max(100),
});

/** Behind the ops token (see ops.ts): the price feed's state, and accepting a quote that paused trading. */
export function opsPricesRouter(s: Services): Router {
  const router = Router();
  const feed = s.prices instanceof HttpPriceFeed ? s.prices : null;

  router.get('/ops/prices', async (_req, res) => {
    if (!feed) {
      res.json({ provider: s.prices.kind, quote: await s.prices.quote(), paused: null });
      return;
    }
    const { accepted, paused } = await feed.status();
    res.json({ provider: feed.kind, quote: await feed.quote(), accepted, paused });
  });

  router.post('/ops/prices/accept', express.json({ limit: '4kb' }), async (req, res) => {
    const body = acceptBody.safeParse(req.body ?? {});
    if (!body.success) {
      res.status(400).json({ error: 'invalid_request', issues: body.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) });
      return;
    }
    if (!feed) {
      res.status(409).json({ error: 'not_paused', reason: 'PRICE_PROVIDER=fixed never pauses' });
      return;
    }
    const accepted = await acceptPausedPrice({ db: s.db, prices: feed }, body.data);
    if (!accepted) {
      res.status(409).json({ error: 'not_paused' });
      return;
    }
    s.log.warn({ operator: body.data.operator, buy: accepted.buyCentsPerGram, sell: accepted.sellCentsPerGram }, 'paused gold price accepted by an operator');
    res.json({ accepted });
  });
  return router;
}
