import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { Services } from '../services';
import { healthRouter } from './routes/health';
import { mpesaCallbackRouter } from './routes/mpesa-callbacks';
import { smsReportsRouter } from './routes/sms-reports';
import { ussdRouter } from './routes/ussd';

/** `sandbox`: the emulators and phone simulator, mounted only in emulator mode. */
export function createApp(s: Services, sandbox?: Router) {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.use(healthRouter(s));
  app.use(ussdRouter(s));
  app.use(mpesaCallbackRouter(s));
  app.use(smsReportsRouter(s));
  if (sandbox) app.use(sandbox);
  app.use((_req, res) => res.status(404).json({ error: 'not_found' }));
  // Body parser failures (malformed JSON, too large) are the client's: 4xx, never 5xx.
  app.use((err: { status?: number; type?: string; message?: string }, _req: Request, res: Response, _next: NextFunction) => {
    const status = err.status && err.status >= 400 && err.status < 500 ? err.status : 500;
    if (status === 500) s.log.error({ err: err.message }, 'unhandled error');
    res.status(status).json({ error: status === 500 ? 'internal_error' : err.type ?? 'bad_request' });
  });
  return app;
}
