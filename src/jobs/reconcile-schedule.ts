import type { Services } from '../services';

export const RECONCILE_SCHEDULER_ID = 'reconcile-stk';
const REFRESH_MS = 60_000;

/**
 * Registers the repeating reconciliation job (a BullMQ job scheduler, on Redis or on Postgres alike):
 * STK payments (reconcile-stk-payments.ts) and payouts (reconcile-payouts.ts). The scheduler id keeps
 * its old name: renaming it would leave the old schedule running beside the new one.
 * Every worker process upserts the same scheduler id, so there is one schedule however many workers
 * run, and each tick is one job that one worker takes. It is upserted again every minute: a Redis that
 * restarted empty has lost it, and reconciliation is exactly what must come back after an outage.
 */
export function scheduleReconciliation(s: Pick<Services, 'queues' | 'config' | 'log'>): { close(): void } {
  const upsert = () =>
    s.queues.reconcile
      .upsertJobScheduler(RECONCILE_SCHEDULER_ID, { every: s.config.reconcile.intervalMs }, {
        name: 'reconcile',
        data: {},
        // One try: the next tick is the retry. Keep a short history for the dashboard.
        opts: { attempts: 1, removeOnComplete: { count: 100 }, removeOnFail: { count: 500 } },
      })
      .catch((err: Error) => s.log.warn({ err: err.message }, 'could not register the reconciliation schedule; retrying'));
  void upsert();
  const timer = setInterval(() => void upsert(), Math.max(REFRESH_MS, s.config.reconcile.intervalMs));
  timer.unref();
  return { close: () => clearInterval(timer) };
}
