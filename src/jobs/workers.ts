import { deliverSms } from '../notifications/deliver-sms';
import { runLiveStkQuery } from '../ops/live-stk-query';
import { recordC2bConfirmation } from '../payments/c2b/record-c2b-confirmation';
import { reconcilePayouts } from '../payments/sell/reconcile-payouts';
import { reconcileStkPayments } from '../payments/buy/reconcile-stk-payments';
import { runBuyOrder } from '../payments/buy/run-buy-order';
import { runPayoutStatusCheck } from '../payments/sell/payout-status';
import { runPayout } from '../payments/sell/run-payout';
import type { Services } from '../services';
import { isFinalAttempt } from '../infra/queues';
import { withJobData } from './job-data';
import { scheduleReconciliation } from './reconcile-schedule';

/** Job processors are thin: check the data the outbox put in the job (job-data.ts), call one use case. */
export function startWorkers(s: Services, concurrency = 16): { close(): Promise<void> } {
  const workers = [
    s.backends.startWorker('buy', withJobData('buy', s.log, (d, job) => runBuyOrder(s, d.orderId, isFinalAttempt(job))), s.config.jobs.buyConcurrency),
    s.backends.startWorker('sms', withJobData('sms', s.log, (d, job) => deliverSms(s, d.smsId, isFinalAttempt(job))), concurrency),
    s.backends.startWorker('payout', withJobData('payout', s.log, (d, job) => runPayout(s, d.payoutId, isFinalAttempt(job))), concurrency),
    s.backends.startWorker('payout-status', withJobData('payout-status', s.log, (d, job) => runPayoutStatusCheck(s, d.payoutId, d.check, isFinalAttempt(job))), concurrency),
    // Paybill confirmations spooled while Postgres was down (src/http/routes/c2b-callbacks.ts).
    s.backends.startWorker('c2b-confirmation', withJobData('c2b-confirmation', s.log, (d) => recordC2bConfirmation(s, d.body)), 2),
    // An operator is waiting on the answer (the processor's return value): a few at a time is plenty.
    s.backends.startWorker('ops-query', withJobData('ops-query', s.log, (d, job) => runLiveStkQuery(s, { data: d, timestamp: job.timestamp })), 4),
    // One tick at a time per process; ticks in other processes skip what this one has leased.
    // Buys, then sales; a failing half does not keep the other from running.
    s.backends.startWorker<Record<string, never>>('reconcile', async () => {
      try {
        await reconcileStkPayments(s);
      } finally {
        await reconcilePayouts(s);
      }
    }, 1),
  ];
  const schedule = scheduleReconciliation(s);

  // The sweep relays what the fast path could not (the queue was down, the process died after commit).
  let sweeping = false;
  const sweep = setInterval(async () => {
    if (sweeping) return;
    sweeping = true;
    try {
      await s.outbox.relay();
    } catch (err) {
      s.log.warn({ err: (err as Error).message }, 'outbox sweep failed');
    } finally {
      sweeping = false;
    }
  }, s.config.jobs.outboxRelayIntervalMs);

  return {
    async close() {
      clearInterval(sweep);
      schedule.close();
      // Worker.close() waits for active jobs to finish: a graceful drain.
      await Promise.all(workers.map((w) => w.close()));
    },
  };
}
