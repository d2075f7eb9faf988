import { Router } from 'express';
import type { Services } from '../../services';

/** 200 when the database and the queue backend answer; 503 naming the one that does not. */
export function healthRouter(s: Services): Router {
  const router = Router();
  router.get('/health', async (_req, res) => {
    const [database, queue] = await Promise.all([
      withTimeout(s.db.raw('select 1')),
      // Asked through the queue itself, so the check holds whichever backend the queue runs on.
      withTimeout(s.queues.buy.getWaitingCount()),
    ]);
    const checks = { database: database ? 'ok' : 'down', queue: queue ? 'ok' : 'down' };
    res.status(database && queue ? 200 : 503).json({ status: database && queue ? 'ok' : 'degraded', checks });
  });
  return router;
}

async function withTimeout(p: Promise<unknown>, ms = 1500): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
