import { Router } from 'express';
import { gaugeCollectors } from '../../ops/gauges';
import type { Services } from '../../services';
import { requireToken } from './ops-auth';

/** Prometheus exposition. Open unless METRICS_TOKEN is set (then `Authorization: Bearer <it>`). */
export function opsMetricsRouter(s: Services): Router {
  const router = Router();
  const collectors = gaugeCollectors(s);
  const guard = s.config.ops.metricsToken ? [requireToken(s.config.ops.metricsToken, { realm: 'metrics' })] : [];
  router.get('/metrics', ...guard, async (_req, res) => {
    const body = await s.metrics.render(collectors);
    res.setHeader('Content-Type', s.metrics.contentType);
    res.send(body);
  });
  return router;
}
