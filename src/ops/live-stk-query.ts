import type { Backends } from '../infra/backends';
import { asDarajaError } from '../vendors/daraja-errors';
import type { Logger } from '../lib/logger';
import type { DarajaClient, StkQueryResult } from '../vendors/daraja-client';

/** What an operator's live STK Query found. It is shown, never applied: settling is reconciliation's job. */
export type LiveQueryResult =
  | StkQueryResult
  | { state: 'error'; code: string; kind: string; message: string }
  /** The job ran after nobody was waiting any more (no worker for a while): it did not call Daraja. */
  | { state: 'stale' };

export type LiveQueryAnswer = { answered: true; result: LiveQueryResult } | { answered: false };

/**
 * Web side of GET /mpesa/status/:id?live=1. A request never calls a vendor: it queues an ops-query
 * job and waits for a worker's answer, up to timeoutMs.
 */
export async function requestLiveStkQuery(deps: { backends: Pick<Backends, 'runAndWait'> }, checkoutRequestId: string, timeoutMs: number): Promise<LiveQueryAnswer> {
  const wait = await deps.backends.runAndWait('ops-query', { checkoutRequestId, waitMs: timeoutMs }, timeoutMs);
  return wait.finished ? { answered: true, result: wait.result as LiveQueryResult } : { answered: false };
}

/**
 * Worker side: one STK Query. Vendor failures are answers too (the operator wants to see them), so
 * they are returned, not thrown: the job has one attempt and nobody would see a retry's result.
 */
export async function runLiveStkQuery(
  deps: { daraja: Pick<DarajaClient, 'stkQuery'>; log: Logger },
  job: { data: { checkoutRequestId: string; waitMs?: number }; timestamp: number },
  now: () => number = Date.now,
): Promise<LiveQueryResult> {
  const waitMs = job.data.waitMs ?? 0;
  if (waitMs > 0 && now() - job.timestamp > waitMs) return { state: 'stale' };
  try {
    return await deps.daraja.stkQuery(job.data.checkoutRequestId);
  } catch (err) {
    const e = asDarajaError(err);
    deps.log.warn({ checkoutRequestId: job.data.checkoutRequestId, code: e.code }, 'ops live stk query failed');
    return { state: 'error', code: e.code, kind: e.kind, message: e.message.slice(0, 300) };
  }
}
