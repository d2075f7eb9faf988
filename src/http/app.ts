import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { Services } from '../services';
import { httpMetrics } from './http-metrics';
import { b2cCallbackRouter } from './routes/b2c-callbacks';
import { c2bCallbackRouter } from './routes/c2b-callbacks';
import { consoleRouter } from './routes/console';
import { healthRouter } from './routes/health';
import { mpesaCallbackRouter } from './routes/mpesa-callbacks';
import { opsRouter } from './routes/ops';
import { opsMetricsRouter } from './routes/ops-metrics';
import { opsProbesRouter } from './routes/ops-probes';
import { smsReportsRouter } from './routes/sms-reports';
import { ussdRouter } from './routes/ussd';
import { ussdEventsRouter } from './routes/ussd-events';

/** `sandbox`: the emulators and phone simulator, mounted only in emulator mode. */
export function createApp(s: Services, sandbox?: Router) {
  const app = express();
  app.disable('x-powered-by');
  // Off unless TRUST_PROXY names the proxies: otherwise anyone could forge X-Forwarded-For past the IP allowlist.
  app.set('trust proxy', s.config.http.trustProxy);
  app.use(httpMetrics(s.metrics));
  app.use(healthRouter(s));
  app.use(opsProbesRouter(s));
  app.use(opsMetricsRouter(s));
  if (s.config.ops.apiToken) app.use(opsRouter(s, s.config.ops.apiToken));
  if (s.config.ops.apiToken) app.use(consoleRouter());
  app.use(ussdRouter(s));
  app.use(ussdEventsRouter(s));
  app.use(mpesaCallbackRouter(s));
  app.use(b2cCallbackRouter(s));
  app.use(c2bCallbackRouter(s));
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
