import { z } from 'zod';
import type { JobView } from '../infra/backends';
import type { Logger } from '../lib/logger';

/**
 * What each queue's jobs carry, checked before a use case sees it. A job whose data does not fit (a
 * queue shared with an older release, a hand-added job) is logged and dropped, never retried: retrying
 * cannot make it fit, and no use case runs on guesses.
 */
export const JOB_DATA = {
  buy: z.object({ orderId: z.uuid() }),
  sms: z.object({ smsId: z.number().int().positive() }),
  payout: z.object({ payoutId: z.string().regex(/^GP[A-Z0-9]{16}$/) }),
  'payout-status': z.object({ payoutId: z.string().regex(/^GP[A-Z0-9]{16}$/), check: z.number().int().positive() }),
  'c2b-confirmation': z.object({ body: z.unknown() }),
  'ops-query': z.object({ checkoutRequestId: z.string().min(1).max(100), waitMs: z.number().int().nonnegative().optional() }),
} as const;

/** A processor that runs `fn` on the job's checked data, or logs and drops a job that does not fit. */
export function withJobData<K extends keyof typeof JOB_DATA, R>(queue: K, log: Logger, fn: (data: z.output<(typeof JOB_DATA)[K]>, job: JobView<unknown>) => Promise<R>) {
  return async (job: JobView<unknown>): Promise<R | undefined> => {
    const parsed = JOB_DATA[queue].safeParse(job.data);
    if (!parsed.success) {
      log.error({ queue, issues: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) }, 'job dropped: its data does not fit the queue');
      return undefined;
    }
    return fn(parsed.data as z.output<(typeof JOB_DATA)[K]>, job);
  };
}
