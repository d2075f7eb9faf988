import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Router } from 'express';
import type { Services } from '../../services';

export const QUEUES_PATH = '/ops/queues';

/**
 * Bull Board over every queue, on either engine (its BullMQ adapter reads the PostgreSQL backend
 * through the same Queue methods). Mounted behind the ops token; a browser is asked for it once
 * (HTTP Basic, any user name, the token as password).
 */
export function opsQueuesRouter(s: Services): Router {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(QUEUES_PATH);
  createBullBoard({
    queues: s.backends.dashboardQueues().map((q) => new BullMQAdapter(q)),
    // @bull-board/express pins its own copy of @bull-board/api (one patch version apart): the same
    // interface, declared twice, which TypeScript cannot tell.
    serverAdapter: serverAdapter as unknown as Parameters<typeof createBullBoard>[0]['serverAdapter'],
    options: { uiConfig: { boardTitle: 'Gold wallet queues' } },
  });
  return serverAdapter.getRouter() as Router;
}
