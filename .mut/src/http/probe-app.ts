import express from 'express';
import type { Services } from '../services';
import { opsMetricsRouter } from './routes/ops-metrics';
import { opsProbesRouter } from './routes/ops-probes';

/** What a worker-only process serves on WORKER_HTTP_PORT: /live, /ready and /metrics, nothing else. */
export function createProbeApp(s: Services) {
  const app = express();
  app.disable('x-powered-by');
  app.use(opsProbesRouter(s));
  app.use(opsMetricsRouter(s));
  app.use((_req, res) => res.status(404).json({ error: 'not_found' }));
  return app;
}
