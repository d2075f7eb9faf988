import type { Config } from '../../config';
import { logOpsAlerts, type OpsAlert } from '../../notifications/ops-alerts';
import { loadOrder } from '../../orders/orders';
import { askTransactionStatus } from './payout-status';
import { loadPayout, type PayoutDeps } from './payouts';
import { AWAITING_PAYOUT, BEFORE_PAYOUT_ACCEPTED } from '../../orders/order-states';
import { failSellOrder, holdUnconfirmedPayout } from './sell-outcomes';

export interface PayoutReconcileDeps extends Omit<PayoutDeps, 'config'> {
  config: Pick<Config, 'payouts' | 'reconcile'> & { mpesa: Pick<Config['mpesa'], 'httpTimeoutMs'> };
}

export interface PayoutSweepReport {
  /** Transaction Status queries the sweep sent (acknowledged or not). */
  asked: number;
  /** Sales held in review with a payout_unconfirmed alert after the sweep's last check. */
  reviewed: number;
  /** Sales whose payout request was never attempted (their job was lost): failed, gold returned. */
  unsent: number;
}

/** At most this many payouts per run; the next run continues. */
const MAX_PER_RUN = 100;
const BATCH = 100;
/** Spike arrest and quota: asking about the next payout now would only be refused too. */
const THROTTLED = new Set(['500.003.02', '500.003.03']);

/**
 * The payout half of reconciliation (run by the same reconciliation job as reconcileStkPayments). It
 * finds every sale M-Pesa has gone silent about, however that happened: a Result and a queue timeout
 * that never came, a status answer that never came, or the payout / status job itself lost (a queue
 * that lost it, a worker killed on the job's last attempt). A payout is silent when nothing at all was
 * recorded for it for PAYOUT_RESULT_WAIT_SECONDS + RECONCILE_AFTER_SECONDS (a healthy status-check chain
 * touches it every PAYOUT_RESULT_WAIT_SECONDS, an attempt every time it sends).
 *
 *  1. A silent payout that may have reached M-Pesa (at least one attempt): the sweep asks Transaction
 *     Status itself, in this job (no other queue needed), up to PAYOUT_STATUS_CHECKS times, with a
 *     backoff of RECONCILE_RETRY_SECONDS doubling (at most x16). An answer settles it at the status
 *     result URL exactly as a B2C Result would. Still nothing after the last check: `review` with a
 *     `payout_unconfirmed` alert. The gold is never returned here: the payout may have gone out.
 *  2. A sale whose payout was never attempted RECONCILE_GIVE_UP_SECONDS after it was placed (attempts 0
 *     and nothing in flight: no request can have left): failed, the gold goes back, the seller is told.
 *
 * The sweep's query takes a fresh check number, so a chain link still scheduled stands down and one
 * thing at a time asks about a payout. Safe in several workers at once: each payout is leased first,
 * and every decision locks its order.
 */
export async function reconcilePayouts(deps: PayoutReconcileDeps): Promise<PayoutSweepReport> {
  const report: PayoutSweepReport = { asked: 0, reviewed: 0, unsent: 0 };
  const alerts: OpsAlert[] = [];
  const seen: string[] = [];
  for (let i = 0; i < MAX_PER_RUN; i++) {
    const due = await leaseSilentPayout(deps, seen);
    if (!due) break;
    seen.push(due.id);
    if ((await sweepOne(deps, due, report, alerts)) === 'throttled') break;
  }
  await failUnsentPayouts(deps, report);
  logOpsAlerts(deps.log, alerts);
  if (Object.values(report).some((n) => n > 0)) deps.log.info({ ...report }, 'payout reconciliation');
  return report;
}

interface DuePayout {
  id: string;
  order_id: string;
  /** This sweep's check number for the payout, counted by the lease. */
  sweep_checks: number;
}

/**
 * One silent payout, leased: its next sweep moves to after the backoff (which is also the lease: a
 * concurrent run skips it), and its sweep counter goes up. Payouts already swept once are due by their
 * next_sweep_at alone (the sweep does not wait for silence again).
 */
async function leaseSilentPayout(deps: PayoutReconcileDeps, seen: string[]): Promise<DuePayout | undefined> {
  const r = deps.config.reconcile;
  const { rows } = await deps.db.raw(
    `UPDATE payouts p
        SET sweep_checks = p.sweep_checks + 1,
            next_sweep_at = now() + make_interval(secs => greatest(:retry * power(2, least(p.sweep_checks, 4)), :lease))
      WHERE p.id = (
        SELECT q.id FROM payouts q JOIN orders o ON o.id = q.order_id
         WHERE o.kind = 'sell' AND o.status = ANY(:awaiting)
           AND q.settled_at IS NULL AND q.attempts > 0
           AND (q.sweep_checks > 0 OR q.updated_at <= now() - make_interval(secs => :silent))
           AND (q.next_sweep_at IS NULL OR q.next_sweep_at <= now())
           AND NOT (q.id = ANY(string_to_array(:seen, ',')))
         ORDER BY q.next_sweep_at NULLS FIRST, q.id
         LIMIT 1
         FOR UPDATE OF q SKIP LOCKED)
      RETURNING p.id, p.order_id, p.sweep_checks`,
    {
      retry: r.retrySeconds,
      lease: Math.ceil((2 * deps.config.mpesa.httpTimeoutMs) / 1000),
      silent: deps.config.payouts.resultWaitSeconds + r.afterSeconds,
      seen: seen.join(','),
      awaiting: [...AWAITING_PAYOUT],
    },
  );
  return rows[0];
}

async function sweepOne(deps: PayoutReconcileDeps, due: DuePayout, report: PayoutSweepReport, alerts: OpsAlert[]): Promise<'throttled' | void> {
  const checks = deps.config.payouts.statusChecks;
  if (due.sweep_checks > checks) {
    // Every check asked, and the backoff since the last one gave its answer time: nobody knows.
    const alert = await deps.db.transaction(async (trx) => {
      const order = await loadOrder(trx, due.order_id, { lock: true });
      const payout = await loadPayout(trx, due.id);
      if (!order || !payout || !AWAITING_PAYOUT.includes(order.status)) return null;
      return holdUnconfirmedPayout(trx, order, payout, AWAITING_PAYOUT, `no Result, timeout or status answer; ${checks} Transaction Status checks by the reconciliation sweep did not settle it`);
    });
    if (alert) {
      report.reviewed += 1;
      alerts.push(alert);
    }
    return;
  }
  // A fresh check number, under the order lock: any chain link still scheduled now stands down.
  const check = await deps.db.transaction(async (trx) => {
    const order = await loadOrder(trx, due.order_id, { lock: true });
    if (!order || !AWAITING_PAYOUT.includes(order.status)) return null;
    const [row] = await trx('payouts').where({ id: due.id }).increment('status_checks', 1).returning('status_checks');
    return row.status_checks as number;
  });
  if (check === null) return;
  report.asked += 1;
  deps.log.warn({ orderId: due.order_id, payoutId: due.id, sweep: due.sweep_checks, check }, 'payout silent: asking Transaction Status');
  const failed = await askTransactionStatus(deps, due.id, check);
  if (failed && THROTTLED.has(failed.code)) return 'throttled';
}

/**
 * Sales still before their first B2C attempt long after they were placed: their payout job is gone.
 * No request can have left (the attempt is counted, under the order lock, before one does), so the
 * sale fails and the gold goes back. Re-checked under the order lock the payout job also takes.
 */
async function failUnsentPayouts(deps: PayoutReconcileDeps, report: PayoutSweepReport): Promise<void> {
  const ids: Array<{ id: string }> = await deps.db('orders as o')
    .join('payouts as p', 'p.order_id', 'o.id')
    .where('o.kind', 'sell')
    .whereIn('o.status', BEFORE_PAYOUT_ACCEPTED)
    .where('p.attempts', 0)
    .whereNull('p.in_flight_at')
    .where('o.created_at', '<=', deps.db.raw(`now() - make_interval(secs => ?)`, [deps.config.reconcile.giveUpSeconds]))
    .limit(BATCH)
    .select('o.id');
  for (const { id } of ids) {
    const failed = await deps.outbox.transaction(async (trx) => {
      const order = await loadOrder(trx, id, { lock: true });
      const payout = await trx('payouts').where({ order_id: id }).first();
      if (!order || !payout || payout.attempts !== 0 || payout.in_flight_at || !BEFORE_PAYOUT_ACCEPTED.includes(order.status)) return false;
      return failSellOrder(trx, deps.outbox, order, payout, BEFORE_PAYOUT_ACCEPTED, {
        code: 'payout_not_sent',
        description: 'the payout request was never sent (its job was lost)',
        reason: 'unavailable',
      });
    });
    if (failed) {
      report.unsent += 1;
      deps.log.warn({ orderId: id }, 'sale never sent to M-Pesa in time: failed, gold returned');
    }
  }
}
