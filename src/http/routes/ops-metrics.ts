import { Router } from 'express';
import { gaugeCollectors } from '../../ops/gauges';
import type { Services } from '../../services';
import { requireToken } from './ops-auth';

/**
 * Prometheus exposition: pool balances, order counts, queue depths. Closed by default:
 * `Authorization: Bearer <METRICS_TOKEN or OPS_API_TOKEN>`. With neither token it is served only in
 * emulator mode (a sandbox on someone's laptop); anywhere else it is not mounted (404), so forgetting
 * the token hides the numbers instead of publishing them.
 */
export function opsMetricsRouter(s: Services): Router {
  const router = Router();
  const tokens = [s.config.ops.metricsToken, s.config.ops.apiToken].filter((t): t is string => !!t);
  if (tokens.length === 0 && s.config.mpesa.environment !== 'emulator') return router;
  const collectors = gaugeCollectors(s);
  const guard = tokens.length > 0 ? [requireToken(tokens, { realm: 'metrics' })] : [];
  router.get('/metrics', ...guard, async (_req, res) => {
    const body = await s.metrics.render(collectors);
    res.setHeader('Content-Type', s.metrics.contentType);
    res.send(body);
  });
  return router;
}
