import { Router, type RequestHandler } from 'express';
import type { Services } from '../../services';
import { opsAdminRouter } from './ops-admin';
import { opsAlertsRouter } from './ops-alerts';
import { requireToken } from './ops-auth';
import { opsMpesaRouter } from './ops-mpesa';
import { opsPricesRouter } from './ops-prices';
import { QUEUES_PATH, opsQueuesRouter } from './ops-queues';
import { opsTradeRouter } from './ops-trade';

/** Everything an operator (or another channel) calls, behind OPS_API_TOKEN. */
export const OPS_PATHS = ['/ops', '/trade', '/mpesa/status', '/mpesa/test-stk'];

/** Ops answers carry balances, orders and (in the CSV) full phone numbers: no cache may keep them. */
const noStore: RequestHandler = (_req, res, next) => {
  res.setHeader('Cache-Control', 'no-store');
  next();
};

/** Mounted only when OPS_API_TOKEN is set: without it these paths are plain 404s. */
export function opsRouter(s: Services, token: string): Router {
  const router = Router();
  router.use(QUEUES_PATH, requireToken(token, { realm: 'gold-wallet ops', browser: true }), opsQueuesRouter(s));
  router.use(OPS_PATHS, requireToken(token, { realm: 'gold-wallet ops' }), noStore);
  router.use(opsMpesaRouter(s));
  router.use(opsTradeRouter(s));
  router.use(opsAdminRouter(s));
  router.use(opsPricesRouter(s));
  router.use(opsAlertsRouter(s));
  return router;
}
