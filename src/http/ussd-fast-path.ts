import type http from 'node:http';
import type { Services } from '../services';
import { formatReply } from '../ussd/machine';
import { catalogFor } from '../i18n';
import { clientWentAway, readBody, secretRoute, timeRequest } from './fast-path';
import { answerUssd, USSD_FORM_LIMIT } from './routes/ussd';

const ROUTE = '/ussd/:secret';
const PREFIX = '/ussd/';

/**
 * Africa's Talking's USSD requests answered before express: the hop a saver waits on, a few hundred times a
 * second per process, so it skips express's router, middleware chain and body parser (about half a screen's CPU).
 * Only the plain case is taken: POST /ussd/<secret> with the right secret (compared in constant time) and no IP
 * allowlist; anything else (a wrong secret, an allowlist to check, any other path) goes to express unchanged, which
 * answers exactly as before (404, 403, the other routes). The form limits and answers are express's: at most 8 kB
 * and 20 fields, a repeated field or a body that cannot be read is an END, never an error status.
 */
export function ussdFastPath(s: Services, express: http.RequestListener): http.RequestListener {
  const secret = s.config.at.callbackSecret;
  if (!secret || s.config.at.callbackIpAllowlist.length > 0) return express;
  const ours = secretRoute(PREFIX, secret);
  return (req, res) => {
    if (!ours(req)) {
      express(req, res);
      return;
    }
    timeRequest(s.metrics, ROUTE, res);
    readForm(req).then(
      (form) => (form === null ? Promise.resolve(formatReply({ end: true, text: catalogFor('en').ussd.invalidRequest })) : answerUssd(s, form)),
    ).then((text) => {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    }, (err: unknown) => {
      if (clientWentAway(req)) return void res.destroy();
      s.log.error({ err: (err as Error).message }, 'ussd request failed');
      if (!res.headersSent) res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(formatReply({ end: true, text: catalogFor('en').ussd.unavailable }));
    });
  };
}

/** The urlencoded form, as express.urlencoded({ extended: false }) reads it; null when it would have refused it. */
async function readForm(req: http.IncomingMessage): Promise<Record<string, string> | null> {
  const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const body = await readBody(req, USSD_FORM_LIMIT.bytes);
  if (body === null) return null;
  // express would leave the body unparsed ({}), which the schema refuses: the same END.
  if (type !== 'application/x-www-form-urlencoded') return {};
  const params = new URLSearchParams(body.toString('utf8'));
  const form: Record<string, string> = Object.create(null) as Record<string, string>;
  let count = 0;
  for (const [k, v] of params) {
    if (++count > USSD_FORM_LIMIT.parameters || Object.hasOwn(form, k)) return null;
    form[k] = v;
  }
  return form;
}
