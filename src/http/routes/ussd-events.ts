import express, { Router } from 'express';
import { z } from 'zod';
import type { Services } from '../../services';
import { recordUssdEvent } from '../../ussd/record-ussd-event';
import { atCallbackGuard } from '../callback-guard';

const optionalInt = z.coerce.number().int().min(0).max(2_147_483_647).optional().catch(undefined);

// Postgres cannot store a NUL character: such a notification is refused (400), not failed (500).
const text = (max: number) => z.string().max(max).regex(/^[^\u0000]*$/);

const eventBody = z.object({
  sessionId: text(200).min(1),
  status: z.enum(['Success', 'Incomplete', 'Failed']),
  serviceCode: text(50).optional(),
  networkCode: text(20).optional(),
  phoneNumber: text(30).optional(),
  input: text(1000).optional(),
  durationInMillis: optionalInt,
  cost: text(50).optional(),
  errorMessage: text(2000).optional(),
  hopsCount: optionalInt,
  date: text(50).optional(),
});

/** Africa's Talking's USSD end-of-session notification (form-encoded; /ussd/events/<AT_CALLBACK_SECRET> is the events URL in AT's dashboard). */
export function ussdEventsRouter(s: Services): Router {
  const router = Router();
  router.post('/ussd/events/:secret', ...atCallbackGuard(s), express.urlencoded({ extended: false, limit: '8kb', parameterLimit: 30 }), async (req, res) => {
    const parsed = eventBody.safeParse(req.body ?? {});
    if (!parsed.success) {
      // The body is not logged: its `input` may carry a PIN.
      s.log.warn({ problems: parsed.error.issues.map((i) => i.path.join('.')) }, 'ussd event not understood');
      res.status(400).json({ error: 'invalid_event' });
      return;
    }
    const outcome = await recordUssdEvent(s, parsed.data);
    s.log.info({ status: parsed.data.status, outcome }, 'ussd session ended');
    res.status(200).end();
  });
  return router;
}
