import { Worker, type Job } from 'bullmq';
import { deliverSms } from '../notifications/deliver-sms';
import { runBuyOrder } from '../payments/run-buy-order';
import type { Services } from '../services';
import { isFinalAttempt, QUEUE_NAMES } from './queues';

/** Job processors are thin: read the id the outbox put in the job, call one use case. */
export function startWorkers(s: Services, concurrency = 16): { close(): Promise<void> } {
  const options = { connection: s.workerConnection, prefix: s.config.queuePrefix, concurrency };
  const workers = [
    new Worker(QUEUE_NAMES.buy, (job: Job<{ orderId: string }>) => runBuyOrder(s, job.data.orderId, isFinalAttempt(job)), options),
    new Worker(QUEUE_NAMES.sms, (job: Job<{ smsId: number }>) => deliverSms(s, job.data.smsId, isFinalAttempt(job)), options),
  ];
  for (const w of workers) {
    w.on('failed', (job, err) => s.log.warn({ queue: w.name, jobId: job?.id, attempt: job?.attemptsMade, err: err.message }, 'job attempt failed'));
    w.on('error', (err) => s.log.error({ queue: w.name, err: err.message }, 'worker error'));
  }

  // The sweep relays what the fast path could not (Redis was down, the process died after commit).
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
