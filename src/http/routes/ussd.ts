import express, { Router } from 'express';
import { z } from 'zod';
import { catalogFor } from '../../i18n';
import { formatReply } from '../../ussd/machine';
import { handleUssd } from '../../ussd/handle-ussd';
import type { Services } from '../../services';

const ussdBody = z.object({
  sessionId: z.string().min(1).max(200),
  serviceCode: z.string().max(50),
  phoneNumber: z.string().max(30),
  networkCode: z.string().max(20).optional(),
  text: z.string().max(500).default(''),
});

/** Africa's Talking USSD: always 200 text/plain `CON`/`END`, whatever happens behind it. */
export function ussdRouter(s: Services): Router {
  const router = Router();
  router.post('/ussd', express.urlencoded({ extended: false, limit: '8kb' }), async (req, res) => {
    res.type('text/plain');
    const t = catalogFor('en');
    const parsed = ussdBody.safeParse(req.body ?? {});
    if (!parsed.success) {
      res.send(formatReply({ end: true, text: t.ussd.unavailable }));
      return;
    }
    try {
      res.send(await handleUssd(s, parsed.data));
    } catch (err) {
      s.log.error({ err: (err as Error).message }, 'ussd request failed');
      res.send(formatReply({ end: true, text: t.ussd.unavailable }));
    }
  });
  return router;
}
