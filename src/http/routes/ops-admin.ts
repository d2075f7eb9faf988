import { once } from 'node:events';
import express, { Router } from 'express';
import { z } from 'zod';
import { listOrders } from '../../ops/list-orders';
import { paymentRecordByOrderId } from '../../ops/payment-record';
import { poolReport } from '../../ops/pool-report';
import { resolveReview } from '../../ops/resolve-review';
import { parseExportRange, transactionsCsv } from '../../ops/transactions-csv';
import type { Services } from '../../services';
import { parseOr400 } from '../validate';

const ordersQuery = z.object({
  status: z
    .string()
    .regex(/^[a-z_]+(,[a-z_]+)*$/, 'one status or several separated by commas')
    .optional()
    .transform((v) => v?.split(',')),
  limit: z.coerce.number().int().min(1).max(500).default(50),
});
const orderId = z.uuid();
const resolveBody = z.object({
  // Buys: credit, refund_note, close. Sales: paid_out, not_paid (the wrong kind's action is 422).
  action: z.enum(['credit', 'refund_note', 'close', 'paid_out', 'not_paid']),
  note: z.string().trim().min(1).max(1000),
  operator: z.string().trim().min(1).max(100),
});
const exportQuery = z.object({ from: z.string(), to: z.string() });

const RESOLVE_STATUS = { not_found: 404, not_in_review: 409, pool_insufficient: 409, already_credited: 409, not_a_buy: 422, not_a_sell: 422, sale_not_held: 409 } as const;

/** Behind the ops token (see ops.ts). */
export function opsAdminRouter(s: Services): Router {
  const router = Router();

  router.get('/ops/pool', async (_req, res) => {
    res.json(await poolReport(s.db));
  });

  router.get('/ops/orders', async (req, res) => {
    const q = parseOr400(res, ordersQuery, req.query, 'invalid_query');
    if (!q) return;
    res.json({ orders: await listOrders(s.db, { limit: q.limit, ...(q.status ? { statuses: q.status } : {}) }) });
  });

  router.get('/ops/orders/:id', async (req, res) => {
    const id = orderId.safeParse(req.params.id);
    const record = id.success ? await paymentRecordByOrderId(s.db, id.data) : null;
    if (!record) res.status(404).json({ error: 'not_found' });
    else res.json(record);
  });

  router.post('/ops/orders/:id/resolve', express.json({ limit: '8kb' }), async (req, res) => {
    const id = orderId.safeParse(req.params.id);
    if (!id.success) {
      res.status(404).json({ error: 'not_found' });
      return;
    }
    const body = parseOr400(res, resolveBody, req.body ?? {});
    if (!body) return;
    const result = await resolveReview(s, { orderId: id.data, ...body });
    if (!result.ok) {
      res.status(RESOLVE_STATUS[result.error]).json(result);
      return;
    }
    res.json(result);
  });

  router.get('/ops/transactions.csv', async (req, res) => {
    const q = exportQuery.safeParse(req.query);
    const range = q.success ? parseExportRange(q.data.from, q.data.to) : ({ ok: false, detail: 'from and to are required, YYYY-MM-DD' } as const);
    if (!range.ok) {
      res.status(400).json({ error: 'invalid_range', detail: range.detail });
      return;
    }
    s.log.info({ from: q.data!.from, to: q.data!.to }, 'transactions exported');
    res.status(200);
    res.setHeader('Content-Type', 'text/csv; charset=utf-8');
    res.setHeader('Content-Disposition', `attachment; filename="transactions-${q.data!.from}-${q.data!.to}.csv"`);
    res.setHeader('Cache-Control', 'no-store');
    try {
      for await (const chunk of transactionsCsv(s.db, range.range)) {
        if (!res.write(chunk)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
        if (res.destroyed) return; // the client went away: stop reading
      }
      res.end();
    } catch (err) {
      // Headers are gone: cutting the connection is the only way to tell the client the file is incomplete.
      s.log.error({ err: (err as Error).message }, 'transactions export failed');
      res.destroy();
    }
  });

  return router;
}
