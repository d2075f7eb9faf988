import { Router } from 'express';
import { z } from 'zod';
import { listAlerts } from '../../ops/list-alerts';
import type { Services } from '../../services';

const alertsQuery = z.object({
  open: z.enum(['0', '1']).default('0'),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

/** Behind the ops token (see ops.ts): GET /ops/alerts?open=1, what needs a person, newest first. */
export function opsAlertsRouter(s: Services): Router {
  const router = Router();
  router.get('/ops/alerts', async (req, res) => {
    const q = alertsQuery.safeParse(req.query);
    if (!q.success) {
      res.status(400).json({ error: 'invalid_query', issues: q.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) });
      return;
    }
    res.json({ alerts: await listAlerts(s.db, { open: q.data.open === '1', limit: q.data.limit }) });
  });
  return router;
}
