import type { Config } from '../../config';
import type { Db } from '../../db/knex';
import type { Outbox } from '../../infra/outbox';
import { VendorError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import type { DarajaClient, StkQueryResult } from '../../vendors/daraja-client';
import { failBuyOrder } from './buy-outcomes';
import { AWAITING_STK_RESULT, BEFORE_STK_ACCEPTED } from '../../orders/order-states';
import { loadOrder } from '../../orders/orders';
import { settleStkPayment } from './settle-stk-payment';
import type { SettlementOutcome } from './stk-report';

export interface ReconcileDeps {
  db: Db;
  outbox: Outbox;
  daraja: Pick<DarajaClient, 'stkQuery'>;
  log: Logger;
  config: Pick<Config, 'reconcile'> & { mpesa: Pick<Config['mpesa'], 'httpTimeoutMs'> };
}

export interface ReconcileReport {
  queried: number;
  /** Settled by a final Query answer (paid or failed). */
  settled: number;
  /** "Being processed" or a failed Query: asked again later. */
  pending: number;
  expired: number;
  /** Orders that never got a push out in time: failed, nothing was charged. */
  unpushed: number;
}

/** At most this many Queries per run; the next run continues. Keeps one run short and Daraja unflooded. */
const MAX_QUERIES_PER_RUN = 200;
const BATCH = 200;

/**
 * The reconciliation job, run by a BullMQ job scheduler (see startWorkers). It settles, from the
 * database's point of view, every STK payment M-Pesa never told us about:
 *  1. accepted pushes with no callback after RECONCILE_AFTER_SECONDS: STK Query; a final answer
 *     settles them exactly as a callback would (settleStkPayment); "being processed" or an error asks
 *     again later with backoff; still nothing after RECONCILE_GIVE_UP_SECONDS: the reservation expires;
 *  2. pushes whose outcome we never saw (no CheckoutRequestID to query): after the same limit, expired;
 *  3. orders whose push never went out at all (a job lost with a queue): failed, nothing was charged.
 * Safe to run in several workers at once: each payment is leased before it is queried, and every
 * settlement locks its order.
 */
export async function reconcileStkPayments(deps: ReconcileDeps): Promise<ReconcileReport> {
  const report: ReconcileReport = { queried: 0, settled: 0, pending: 0, expired: 0, unpushed: 0 };
  for (let i = 0; i < MAX_QUERIES_PER_RUN; i++) {
    const due = await leaseDuePayment(deps);
    if (!due) break;
    // Daraja says we ask too fast: the rest waits for the next run (leases lapse, nothing is lost).
    if ((await queryAndSettle(deps, due, report)) === 'throttled') break;
  }
  await expireUnknownPushes(deps, report);
  await failUnpushedOrders(deps, report);
  if (Object.values(report).some((n) => n > 0)) deps.log.info({ ...report }, 'stk reconciliation');
  return report;
}

interface DuePayment {
  id: number;
  checkout_request_id: string;
  query_attempts: number;
  past_give_up: boolean;
}

/** One payment due for a Query, leased so that a concurrent run skips it while we ask. */
async function leaseDuePayment(deps: ReconcileDeps): Promise<DuePayment | undefined> {
  const r = deps.config.reconcile;
  const leaseSeconds = Math.ceil((2 * deps.config.mpesa.httpTimeoutMs) / 1000) + 30;
  const { rows } = await deps.db.raw(
    `UPDATE stk_payments p SET next_query_at = now() + make_interval(secs => :lease)
      WHERE p.id = (
        SELECT q.id FROM stk_payments q JOIN orders o ON o.id = q.order_id
         WHERE q.settled_at IS NULL AND q.checkout_request_id IS NOT NULL
           AND o.status = ANY(:awaiting)
           AND coalesce(q.accepted_at, q.push_started_at) <= now() - make_interval(secs => :after)
           AND (q.next_query_at IS NULL OR q.next_query_at <= now())
         ORDER BY q.next_query_at NULLS FIRST, q.id
         LIMIT 1
         FOR UPDATE OF q SKIP LOCKED)
      RETURNING p.id, p.checkout_request_id, p.query_attempts,
                coalesce(p.accepted_at, p.push_started_at) <= now() - make_interval(secs => :giveUp) AS past_give_up`,
    { lease: leaseSeconds, after: r.afterSeconds, giveUp: r.giveUpSeconds, awaiting: [...AWAITING_STK_RESULT] },
  );
  return rows[0];
}

/** Spike arrest and quota: asking about the next payment now would only be refused too. */
const THROTTLED = new Set(['500.003.02', '500.003.03']);

async function queryAndSettle(deps: ReconcileDeps, due: DuePayment, report: ReconcileReport): Promise<'throttled' | void> {
  report.queried += 1;
  let answer: StkQueryResult | null = null;
  let problem = '';
  let throttled = false;
  try {
    answer = await deps.daraja.stkQuery(due.checkout_request_id);
  } catch (err) {
    throttled = err instanceof VendorError && THROTTLED.has(err.code);
    problem = err instanceof VendorError ? `${err.code}: ${err.message}` : (err as Error).message;
    deps.log.warn({ paymentId: due.id, err: problem }, 'stk query failed');
  }
  const attempts = due.query_attempts + 1;
  const said = answer?.state === 'final' ? `final ${answer.resultCodeText}: ${answer.resultDesc}` : answer ? 'pending' : `error ${problem}`;
  await deps.db('stk_payments')
    .where({ id: due.id })
    .update({ query_attempts: attempts, last_query_at: deps.db.fn.now(), last_query_result: said.slice(0, 300) });

  if (answer?.state === 'final') {
    const outcome: SettlementOutcome = await settleStkPayment(deps, due.id, {
      source: 'query',
      outcome: answer.resultCode === 0 ? { kind: 'paid', resultDesc: answer.resultDesc, receipt: null } : { kind: 'failed', resultCode: answer.resultCode, resultDesc: answer.resultDesc },
    });
    if (outcome === 'settled' || outcome === 'failed') report.settled += 1;
    return;
  }
  if (due.past_give_up) {
    const outcome = await settleStkPayment(deps, due.id, { source: 'expiry', outcome: { kind: 'expired', reason: `no final answer from M-Pesa (last STK Query: ${said})` } });
    if (outcome === 'expired') report.expired += 1;
    return throttled ? 'throttled' : undefined;
  }
  report.pending += 1;
  const backoff = deps.config.reconcile.retrySeconds * 2 ** Math.min(attempts - 1, 4);
  await deps.db('stk_payments')
    .where({ id: due.id })
    .update({ next_query_at: deps.db.raw(`now() + make_interval(secs => ?)`, [backoff]) });
  if (throttled) return 'throttled';
}

/**
 * Pushes that may have reached M-Pesa but whose CheckoutRequestID we never got (timeout, reset,
 * process killed mid-call): nothing to query with, so we wait for the callback (matched by phone and
 * amount) and give up after the same limit.
 */
async function expireUnknownPushes(deps: ReconcileDeps, report: ReconcileReport): Promise<void> {
  const ids: Array<{ id: number }> = await deps.db('stk_payments as p')
    .join('orders as o', 'o.id', 'p.order_id')
    .where('o.status', 'stk_requested')
    .whereNull('p.checkout_request_id')
    .whereIn('p.push_outcome', ['in_flight', 'unknown'])
    .where('p.push_started_at', '<=', deps.db.raw(`now() - make_interval(secs => ?)`, [deps.config.reconcile.giveUpSeconds]))
    .limit(BATCH)
    .select('p.id');
  for (const { id } of ids) {
    const outcome = await settleStkPayment(deps, id, { source: 'expiry', outcome: { kind: 'expired', reason: 'the push outcome is unknown and no callback arrived' } });
    if (outcome === 'expired') report.expired += 1;
  }
}

/**
 * Orders still before their push long after they were placed: their job is gone (a queue that lost
 * it, a job that failed for good without closing the order). No prompt can have reached the phone,
 * so they fail and the reservation goes back.
 */
async function failUnpushedOrders(deps: ReconcileDeps, report: ReconcileReport): Promise<void> {
  const stale = deps.db.raw(`now() - make_interval(secs => ?)`, [deps.config.reconcile.giveUpSeconds]);
  const ids: Array<{ id: string }> = await deps.db('orders as o')
    .join('stk_payments as p', 'p.order_id', 'o.id')
    .where('o.kind', 'buy')
    .whereIn('o.status', BEFORE_STK_ACCEPTED)
    .whereNull('p.checkout_request_id')
    .where((q) => q.where('p.push_attempts', 0).orWhere('p.push_outcome', 'not_delivered'))
    .where('o.created_at', '<=', stale)
    .limit(BATCH)
    .select('o.id');
  for (const { id } of ids) {
    const failed = await deps.outbox.transaction(async (trx) => {
      const order = await loadOrder(trx, id, { lock: true });
      const payment = await trx('stk_payments').where({ order_id: id }).first();
      // Re-checked under the order lock, which the buy job also takes before it pushes.
      const unpushed = payment && !payment.checkout_request_id && (payment.push_attempts === 0 || payment.push_outcome === 'not_delivered');
      if (!order || !unpushed) return false;
      return failBuyOrder(trx, deps.outbox, order, BEFORE_STK_ACCEPTED, {
        code: 'not_pushed',
        description: 'the STK push could not be sent in time',
        reason: 'generic',
      });
    });
    if (failed) {
      report.unpushed += 1;
      deps.log.warn({ orderId: id }, 'order never pushed in time: failed');
    }
  }
}
