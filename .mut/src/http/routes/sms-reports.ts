import express, { Router } from 'express';
import { z } from 'zod';
import { recordDeliveryReport } from '../../notifications/record-delivery-report';
import type { Services } from '../../services';

// No control characters: Postgres cannot store NUL, and no real message id or reason has any.
const printable = /^[^\u0000-\u001f\u007f]*$/;

const reportBody = z.object({
  id: z.string().min(1).max(100).regex(printable),
  status: z.enum(['Sent', 'Submitted', 'Buffered', 'Success', 'Rejected', 'Failed', 'AbsentSubscriber', 'Expired']),
  failureReason: z.string().max(200).regex(printable).optional(),
});

/** Africa's Talking's SMS delivery reports (form-encoded, set as the callback URL in AT's dashboard). */
export function smsReportsRouter(s: Services): Router {
  const router = Router();
  router.post('/sms/delivery-reports', express.urlencoded({ extended: false, limit: '8kb' }), async (req, res) => {
    const parsed = reportBody.safeParse(req.body ?? {});
    if (!parsed.success) {
      res.status(400).json({ error: 'invalid_report' });
      return;
    }
    const outcome = await recordDeliveryReport(s.db, parsed.data);
    s.metrics.inc('sms_delivery_reports_total', { status: parsed.data.status });
    if (outcome === 'unknown') s.log.warn({ messageId: parsed.data.id }, 'delivery report for an unknown message');
    res.status(200).end();
  });
  return router;
}
