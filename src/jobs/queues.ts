import type { JobsOptions } from 'bullmq';
import type { Config } from '../config';

/** Queue names. Jobs already queued are found by these names: never rename one, add new ones. */
export const QUEUE_NAMES = {
  buy: 'buy-gold',
  sms: 'sms',
} as const;

export type QueueKey = keyof typeof QUEUE_NAMES;

export function jobOptions(jobs: Config['jobs']): JobsOptions {
  return {
    attempts: jobs.attempts,
    backoff: { type: 'exponential', delay: jobs.backoffMs },
    // Keeping finished jobs a day makes a re-add of the same jobId a no-op, on top of idempotent processors.
    removeOnComplete: { age: 24 * 3600, count: 50_000 },
    removeOnFail: { age: 7 * 24 * 3600 },
  };
}

/** Is this the last attempt the queue will make? Then a retryable failure must be handled as final. */
export function isFinalAttempt(job: { attemptsMade: number; opts: { attempts?: number } }): boolean {
  return job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
}
