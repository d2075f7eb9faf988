import { deliverSms } from '../notifications/deliver-sms';
import { runBuyOrder } from '../payments/run-buy-order';
import type { Services } from '../services';
import { isFinalAttempt } from './queues';

/** Job processors are thin: read the id the outbox put in the job, call one use case. */
export function startWorkers(s: Services, concurrency = 16): { close(): Promise<void> } {
  const workers = [
    s.backends.startWorker<{ orderId: string }>('buy', (job) => runBuyOrder(s, job.data.orderId, isFinalAttempt(job)), concurrency),
    s.backends.startWorker<{ smsId: number }>('sms', (job) => deliverSms(s, job.data.smsId, isFinalAttempt(job)), concurrency),
  ];

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
      // Worker.close() waits for active jobs to finish: a graceful drain.
      await Promise.all(workers.map((w) => w.close()));
    },
  };
}
