import express, { Router } from 'express';
import { z } from 'zod';
import { acceptPausedPrice } from '../../prices/price-jump';
import { HttpPriceFeed } from '../../prices/price-source';
import type { Services } from '../../services';
import { parseOr400 } from '../validate';

const cents = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const acceptBody = z
  .object({
    note: z.string().trim().min(1).max(1000),
    operator: z.string().trim().min(1).max(100),
    // The paused prices the operator looked at (GET /ops/prices): accepted only if still the paused ones.
    buyCentsPerGram: cents.optional(),
    sellCentsPerGram: cents.optional(),
  })
  .refine((b) => (b.buyCentsPerGram === undefined) === (b.sellCentsPerGram === undefined), 'buyCentsPerGram and sellCentsPerGram go together');

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
    const body = parseOr400(res, acceptBody, req.body ?? {});
    if (!body) return;
    if (!feed) {
      res.status(409).json({ error: 'not_paused', reason: 'PRICE_PROVIDER=fixed never pauses' });
      return;
    }
    const { buyCentsPerGram, sellCentsPerGram, ...by } = body;
    const seen = buyCentsPerGram !== undefined && sellCentsPerGram !== undefined ? { buyCentsPerGram, sellCentsPerGram } : undefined;
    let answer;
    try {
      answer = await acceptPausedPrice({ db: s.db, prices: feed }, { ...by, ...(seen ? { seen } : {}) });
    } catch (err) {
      res.status(503).json({ error: 'busy', detail: (err as Error).message });
      return;
    }
    if (!answer.ok) {
      res.status(409).json(answer);
      return;
    }
    const { accepted } = answer;
    s.log.warn({ buy: accepted.buyCentsPerGram, sell: accepted.sellCentsPerGram }, 'paused gold price accepted by an operator');
    res.json({ accepted });
  });
  return router;
}
