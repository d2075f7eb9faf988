import { Router } from 'express';
import { checkReadiness } from '../../ops/readiness';
import type { Services } from '../../services';

/** 200 when the database and the queue backend answer; 503 naming the one that does not. */
export function healthRouter(s: Services): Router {
  const router = Router();
  router.get('/health', async (_req, res) => {
    // The same probes as /ready, without the shutdown flag: /health is about the dependencies.
    const { checks } = await checkReadiness(s);
    const ok = checks.database === 'ok' && checks.queue === 'ok';
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'degraded', checks: { database: checks.database, queue: checks.queue } });
  });
  return router;
}
