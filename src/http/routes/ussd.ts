import express, { Router, type RequestHandler, type Response } from 'express';
import { z } from 'zod';
import { catalogFor } from '../../i18n';
import { formatReply } from '../../ussd/machine';
import { handleUssd } from '../../ussd/handle-ussd';
import type { Services } from '../../services';
import { atCallbackGuard } from '../callback-guard';

// Control characters never come from Africa's Talking, and a NUL cannot even be stored (session keys in Postgres).
const printable = (max: number) => z.string().max(max).regex(/^[^\u0000-\u001f\u007f]*$/);

export const ussdBody = z.object({
  sessionId: printable(200).min(1),
  serviceCode: printable(50),
  phoneNumber: printable(30),
  networkCode: printable(20).optional(),
  text: z.string().max(500).regex(/^[^\u0000]*$/).default(''),
});

// Africa's Talking sends six short fields; anything much bigger is not from it.
export const USSD_FORM_LIMIT = { bytes: 8 * 1024, parameters: 20 };
const parseForm = express.urlencoded({ extended: false, limit: USSD_FORM_LIMIT.bytes, parameterLimit: USSD_FORM_LIMIT.parameters });

/** The answer to a form that passed the guard: always a `CON`/`END` text, whatever happens behind it. */
export async function answerUssd(s: Services, body: unknown): Promise<string> {
  const parsed = ussdBody.safeParse(body ?? {});
  if (!parsed.success) return formatReply({ end: true, text: catalogFor('en').ussd.invalidRequest });
  try {
    return await handleUssd(s, parsed.data);
  } catch (err) {
    s.log.error({ err: (err as Error).message }, 'ussd request failed');
    return formatReply({ end: true, text: catalogFor('en').ussd.unavailable });
  }
}

/**
 * Africa's Talking USSD at /ussd/<AT_CALLBACK_SECRET>: always 200 text/plain `CON`/`END`, whatever happens
 * behind it. The phoneNumber of the form is believed, so the secret path (and the optional allowlist) is
 * what keeps anyone else from speaking for a phone: any other path is a 404 before a session, rate-limit
 * tick or row is touched.
 */
export function ussdRouter(s: Services): Router {
  const router = Router();
  const refuse = (res: Response) => res.type('text/plain').send(formatReply({ end: true, text: catalogFor('en').ussd.invalidRequest }));
  // A body too large or unreadable still gets an END (never a 4xx AT would show as an error).
  const form: RequestHandler = (req, res, next) => parseForm(req, res, (err?: unknown) => (err ? refuse(res) : next()));
  router.post('/ussd/:secret', ...atCallbackGuard(s), form, async (req, res) => {
    res.type('text/plain').send(await answerUssd(s, req.body));
  });
  return router;
}
