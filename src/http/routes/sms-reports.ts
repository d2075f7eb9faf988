import express, { Router } from 'express';
import { z } from 'zod';
import { recordDeliveryReport } from '../../notifications/record-delivery-report';
import type { Services } from '../../services';
import { KNOWN_DELIVERY_STATUSES } from '../../vendors/at-sms-status';
import { atCallbackGuard } from '../callback-guard';

// No control characters: Postgres cannot store NUL, and no real message id or reason has any.
const printable = /^[^\u0000-\u001f\u007f]*$/;

const reportBody = z.object({
  id: z.string().min(1).max(100).regex(printable),
  // Stored whatever it is: AT has added statuses before (Expired, AbsentSubscriber) and a refused
  // report is only sent again and again. A report without one (seen in the wild) is stored too.
  status: z.string().min(1).max(50).regex(printable).optional(),
  failureReason: z.string().max(200).regex(printable).optional(),
});

/** Africa's Talking's SMS delivery reports (form-encoded; /sms/delivery-reports/<AT_CALLBACK_SECRET> is the callback URL in AT's dashboard). */
export function smsReportsRouter(s: Services): Router {
  const router = Router();
  router.post('/sms/delivery-reports/:secret', ...atCallbackGuard(s), express.urlencoded({ extended: false, limit: '8kb' }), async (req, res) => {
    const parsed = reportBody.safeParse(req.body ?? {});
    if (!parsed.success) {
      res.status(400).json({ error: 'invalid_report' });
      return;
    }
    const status = parsed.data.status ?? null;
    const outcome = await recordDeliveryReport(s.db, { ...parsed.data, status });
    const known = status !== null && KNOWN_DELIVERY_STATUSES.has(status);
    if (!known) s.log.warn({ messageId: parsed.data.id, status }, 'delivery report with a status Africa\'s Talking does not document: stored as is');
    // Only documented statuses become metric labels: an unknown one must not grow the series.
    s.metrics.inc('sms_delivery_reports_total', { status: known ? status : 'other' });
    if (outcome === 'unknown') s.log.warn({ messageId: parsed.data.id }, 'delivery report for an unknown message');
    res.status(200).end();
  });
  return router;
}
