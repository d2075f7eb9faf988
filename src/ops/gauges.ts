import type { Db } from '../db/knex';
import type { Queues } from '../infra/backends';
import type { QueueKey } from '../infra/queues';
import { SYSTEM_ACCOUNTS } from '../ledger/ledger';
import type { GaugeCollector, GaugeSample } from '../infra/metrics';
import { checkReadiness, type Lifecycle } from './readiness';
import { OPEN_ORDER_STATUSES } from '../orders/order-states';

/**
 * Order states that are not final. Listed (rather than "not paid/failed/expired") so the count is an
 * index range scan over the few open orders, not a scan of every order ever placed. A new
 * non-final state belongs here.
 */

const QUEUE_STATES = ['waiting', 'active', 'delayed', 'failed'] as const;

/**
 * What /metrics reads at each scrape. Each is one cheap query (account rows, an index on status, a
 * partial index on the outbox) so a scrape every 15 s costs the database nothing noticeable.
 */
export function gaugeCollectors(deps: { db: Db; queues: Queues; lifecycle: Lifecycle }): GaugeCollector[] {
  return [
    {
      name: 'ledger',
      async collect() {
        const rows: Array<{ code: string; debits_pending: number; debits_posted: number; credits_posted: number }> = await deps
          .db('accounts')
          .whereIn('code', [SYSTEM_ACCOUNTS.pool, SYSTEM_ACCOUNTS.issuance])
          .select('code', 'debits_pending', 'debits_posted', 'credits_posted');
        const samples: GaugeSample[] = [];
        for (const a of rows) {
          if (a.code === SYSTEM_ACCOUNTS.issuance) {
            samples.push({ name: 'gold_issued_micrograms', labels: {}, value: a.debits_posted });
            continue;
          }
          const posted = a.credits_posted - a.debits_posted;
          samples.push(
            { name: 'gold_pool_micrograms', labels: { state: 'posted' }, value: posted },
            { name: 'gold_pool_micrograms', labels: { state: 'pending' }, value: a.debits_pending },
            { name: 'gold_pool_micrograms', labels: { state: 'available' }, value: posted - a.debits_pending },
          );
        }
        return samples;
      },
    },
    {
      name: 'orders',
      async collect() {
        const rows: Array<{ kind: string; status: string; n: number }> = await deps
          .db('orders')
          .whereIn('status', OPEN_ORDER_STATUSES)
          .groupBy('kind', 'status')
          .select('kind', 'status', deps.db.raw('count(*)::int AS n'));
        return rows.map((r) => ({ name: 'orders_open', labels: { kind: r.kind, status: r.status }, value: r.n }));
      },
    },
    {
      name: 'outbox',
      async collect() {
        const row = await deps.db('outbox').whereNull('relayed_at').first(deps.db.raw('count(*)::int AS n'));
        return [{ name: 'outbox_unrelayed', labels: {}, value: (row as { n: number }).n }];
      },
    },
    {
      name: 'queues',
      async collect() {
        const samples: GaugeSample[] = [];
        await Promise.all(
          (Object.keys(deps.queues) as QueueKey[]).map(async (key) => {
            const counts = await deps.queues[key].getJobCounts(...QUEUE_STATES);
            for (const state of QUEUE_STATES) samples.push({ name: 'queue_jobs', labels: { queue: key, state }, value: counts[state] ?? 0 });
          }),
        );
        return samples;
      },
    },
    {
      name: 'readiness',
      async collect() {
        return [{ name: 'process_ready', labels: {}, value: (await checkReadiness(deps)).ready ? 1 : 0 }];
      },
    },
  ];
}
