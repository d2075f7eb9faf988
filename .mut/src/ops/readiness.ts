import type { Db } from '../db/knex';
import type { Queues } from '../infra/backends';

export interface Lifecycle {
  /** Set first thing on SIGTERM: /ready answers 503 from then on, while requests in flight finish. */
  stopping: boolean;
}

export interface Readiness {
  ready: boolean;
  checks: { database: 'ok' | 'down'; queue: 'ok' | 'down'; accepting: 'yes' | 'stopping' };
}

/** Ready = the database and the queue backend answer, and the process is not shutting down. */
export async function checkReadiness(deps: { db: Db; queues: Queues; lifecycle: Lifecycle }, timeoutMs = 1500): Promise<Readiness> {
  const [database, queue] = await Promise.all([
    answers(deps.db.raw('select 1'), timeoutMs),
    // Asked through a queue itself, so the check holds whichever engine the queues run on.
    answers(deps.queues.buy.getWaitingCount(), timeoutMs),
  ]);
  const stopping = deps.lifecycle.stopping;
  return {
    ready: database && queue && !stopping,
    checks: { database: database ? 'ok' : 'down', queue: queue ? 'ok' : 'down', accepting: stopping ? 'stopping' : 'yes' },
  };
}

async function answers(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
