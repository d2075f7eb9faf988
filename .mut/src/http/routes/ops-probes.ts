import { Router } from 'express';
import { checkReadiness } from '../../ops/readiness';
import type { Services } from '../../services';

/**
 * Orchestrator probes, open (they say nothing sensitive). /live: the process answers (restart it if
 * not). /ready: send it traffic (database and queue answer, not shutting down); the first thing a
 * SIGTERM changes is this answer, so a load balancer stops routing here before the server closes.
 */
export function opsProbesRouter(s: Services): Router {
  const router = Router();
  router.get('/live', (_req, res) => {
    res.json({ status: 'live' });
  });
  router.get('/ready', async (_req, res) => {
    const r = await checkReadiness(s);
    res.status(r.ready ? 200 : 503).json({ status: r.ready ? 'ready' : 'not_ready', checks: r.checks });
  });
  return router;
}
