import express, { Router } from 'express';
import { z } from 'zod';
import { closeAlert } from '../../ops/close-alert';
import { listAlerts } from '../../ops/list-alerts';
import type { Services } from '../../services';
import { parseOr400 } from '../validate';

const alertsQuery = z.object({
  open: z.enum(['0', '1']).default('0'),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

const alertId = z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const closeBody = z.object({
  note: z.string().trim().min(1).max(1000),
  operator: z.string().trim().min(1).max(100),
});
const CLOSE_STATUS = { not_found: 404, already_closed: 409, order_in_review: 409, use_price_accept: 409 } as const;

/**
 * Behind the ops token (see ops.ts): GET /ops/alerts?open=1, what needs a person, newest first;
 * POST /ops/alerts/:id/close {note, operator} for one settled by hand outside the service.
 */
export function opsAlertsRouter(s: Services): Router {
  const router = Router();
  router.get('/ops/alerts', async (req, res) => {
    const q = parseOr400(res, alertsQuery, req.query, 'invalid_query');
    if (!q) return;
    res.json({ alerts: await listAlerts(s.db, { open: q.open === '1', limit: q.limit }) });
  });

  router.post('/ops/alerts/:id/close', express.json({ limit: '8kb' }), async (req, res) => {
    const id = alertId.safeParse(req.params.id);
    if (!id.success || !/^\d+$/.test(req.params.id)) {
      res.status(404).json({ ok: false, error: 'not_found' });
      return;
    }
    const body = parseOr400(res, closeBody, req.body ?? {});
    if (!body) return;
    const result = await closeAlert(s.db, { id: id.data, ...body });
    if (!result.ok) {
      res.status(CLOSE_STATUS[result.error]).json(result);
      return;
    }
    s.log.info({ alertId: result.id, kind: result.kind }, 'ops alert closed by an operator');
    res.json(result);
  });
  return router;
}
