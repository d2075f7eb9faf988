import { Queue, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../config';

/** Queue names. Jobs already in Redis are found by these names: never rename one, add new ones. */
export const QUEUE_NAMES = {
  buy: 'buy-gold',
  sms: 'sms',
} as const;

export type QueueKey = keyof typeof QUEUE_NAMES;
export type Queues = Record<QueueKey, Queue>;

export function jobOptions(jobs: Config['jobs']): JobsOptions {
  return {
    attempts: jobs.attempts,
    backoff: { type: 'exponential', delay: jobs.backoffMs },
    // Keeping finished jobs a day makes a re-add of the same jobId a no-op, on top of idempotent processors.
    removeOnComplete: { age: 24 * 3600, count: 50_000 },
    removeOnFail: { age: 7 * 24 * 3600 },
  };
}

export function createQueues(connection: Redis, prefix: string, jobs: Config['jobs']): Queues {
  const defaultJobOptions = jobOptions(jobs);
  const make = (name: string) => new Queue(name, { connection, prefix, defaultJobOptions });
  return { buy: make(QUEUE_NAMES.buy), sms: make(QUEUE_NAMES.sms) };
}

/** Is this the last attempt BullMQ will make? Then a retryable failure must be handled as final. */
export function isFinalAttempt(job: { attemptsMade: number; opts: { attempts?: number } }): boolean {
  return job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
}
