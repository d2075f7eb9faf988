import { Router } from 'express';
import type { Services } from '../../services';

export const QUEUES_PATH = '/ops/queues';

/**
 * Bull Board over every queue, read-only by default, on either engine (its BullMQ adapter reads the PostgreSQL backend
 * through the same Queue methods). Mounted behind the ops token; a browser is asked for it once
 * (HTTP Basic, any user name, the token as password).
 */
export function opsQueuesRouter(s: Services): Router {
  // Bull Board (~17 MB of RSS) is loaded on the first visit to the dashboard, not by every web process at start:
  // most never serve it (USSD and callbacks are what they are for).
  let board: Router | undefined;
  const router = Router();
  router.use((req, res, next) => {
    board ??= buildBoard(s);
    board(req, res, next);
  });
  return router;
}

function buildBoard(s: Services): Router {
  const { createBullBoard } = require('@bull-board/api') as typeof import('@bull-board/api');
  const { BullMQAdapter } = require('@bull-board/api/bullMQAdapter') as typeof import('@bull-board/api/bullMQAdapter');
  const { ExpressAdapter } = require('@bull-board/express') as typeof import('@bull-board/express');
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(QUEUES_PATH);
  createBullBoard({
    // Read-only unless OPS_QUEUES_WRITABLE=1: an ops token alone must not be able to delete jobs or the
    // reconciliation schedule (bull-board then answers 405 to every change, and hides its buttons).
    queues: s.backends.dashboardQueues().map((q) => new BullMQAdapter(q, { readOnlyMode: !s.config.ops.queuesWritable })),
    // @bull-board/express pins its own copy of @bull-board/api (one patch version apart): the same
    // interface, declared twice, which TypeScript cannot tell.
    serverAdapter: serverAdapter as unknown as Parameters<typeof createBullBoard>[0]['serverAdapter'],
    options: { uiConfig: { boardTitle: 'Gold wallet queues' } },
  });
  return serverAdapter.getRouter() as Router;
}
