import { createDb, type Db } from '../../src/db/knex';
import { Outbox } from '../../src/infra/outbox';
import type { Services } from '../../src/services';
import type { TestService } from './harness';

/**
 * Tools for tests that force one interleaving of two processes: a second worker process, a vendor answer held back
 * until the test lets it go, and the count of sessions queued on a row lock (the signal that a step is waiting).
 */

/**
 * The service as a second worker process would run it: its own pool of connections, and so its own batchers (they
 * are keyed by db and outbox). `close()` ends its connections.
 */
export function secondWorker(svc: TestService): { services: Services; close(): Promise<void> } {
  const a = svc.running.services;
  const db = createDb(svc.config.databaseUrl!, { max: 4 });
  return { services: { ...a, db, outbox: new Outbox(db, a.queues, a.log) }, close: () => db.destroy() };
}

/** Sessions of this database waiting for a lock: a step that queued on a row another transaction holds. */
export async function lockWaiters(db: Db): Promise<number> {
  return Number((await db.raw(`SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`)).rows[0].n);
}

/**
 * A nock reply that answers `answer` only once `release()` is called; `reached` resolves when the request arrives.
 * Use it as `.reply(held.reply)`.
 */
export function heldAnswer(answer: [number, unknown]) {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let arrived!: () => void;
  const reached = new Promise<void>((resolve) => (arrived = resolve));
  const reply = async (): Promise<[number, unknown]> => {
    arrived();
    await released;
    return answer;
  };
  return { reply, reached, release };
}
