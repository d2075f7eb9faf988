import type { JobsOptions } from 'bullmq';
import type { Config } from '../config';

/** Queue names. Jobs already queued are found by these names: never rename one, add new ones. */
export const QUEUE_NAMES = {
  buy: 'buy-gold',
  sms: 'sms',
  // Selling: the B2C payout request, and the Transaction Status checks that settle a payout whose result is missing.
  payout: 'payout',
  'payout-status': 'payout-status',
  // An operator's live STK Query (GET /mpesa/status/:id?live=1): the web request waits for its result.
  'ops-query': 'ops-query',
  // The repeating STK reconciliation (a job scheduler): Query for lost callbacks, expire what never settles.
  reconcile: 'reconcile',
  // A Paybill confirmation that arrived while Postgres was down, held until it can be recorded.
  'c2b-confirmation': 'c2b-confirmation',
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

/**
 * A spooled Paybill confirmation is money already received: it is tried until the database is back,
 * 17 times with exponential backoff from JOB_BACKOFF_MS (about a day and a half at the default 2 s),
 * and a job that still fails is kept for a week in the failed list (Bull Board).
 */
export const C2B_SPOOL_ATTEMPTS = 17;

/**
 * How long a job stays locked by its worker. A worker killed outright (SIGKILL, OOM) stops renewing the
 * lock; once it lapses another worker takes the job over (it counts as stalled, up to `attempts` times,
 * instead of BullMQ's default of once, after which the job would fail and be lost to its order).
 */
export function workerOptions(jobs: Config['jobs']) {
  return { lockDuration: jobs.lockDurationMs, stalledInterval: Math.max(500, Math.floor(jobs.lockDurationMs / 2)), maxStalledCount: jobs.attempts };
}

/** Is this the last attempt the queue will make? Then a retryable failure must be handled as final. */
export function isFinalAttempt(job: { attemptsMade: number; opts: { attempts?: number } }): boolean {
  return job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
}
