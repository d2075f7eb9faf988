import { createDb, type Db } from '../../src/db/knex';
import { Outbox } from '../../src/infra/outbox';
import { placeBuyOrder } from '../../src/payments/buy/place-buy-order';
import { startTestService, type TestService } from '../support/harness';
import { msisdnOf, nextPhone } from '../support/phones';

/**
 * The USSD confirm is one call of place_buy_order. plpgsql keeps a generic plan per connection, made after five calls
 * from the statistics of that moment: on a young database (every fresh deployment, every benchmark) `orders` is nearly
 * empty, and any index looks as cheap as any other. The functions run with enable_seqscan off, so a wrong choice is
 * not a sequential scan but a whole index read with a filter: the daily-limit sum once read every buy order ever
 * placed through the partial index of the open-buy check (0.7 ms a confirm and growing in the benchmark), which a
 * count of sequential scans cannot see. So this counts the rows one confirm reads.
 */
jest.setTimeout(60_000);

describe('place_buy_order on a database that grew after its plans were made', () => {
  let svc: TestService;
  beforeAll(async () => {
    // A fresh clone of the migrated template: orders is empty, as on a new deployment.
    svc = await startTestService({ ROLE: 'web' });
  });
  afterAll(() => svc?.close());

  test('a confirm reads a handful of orders, not every order placed since the plans were made', async () => {
    // One connection: its cached plans are the ones made while the table was empty.
    const db = createDb(svc.config.databaseUrl!, { max: 1 });
    // An ANALYZE by autovacuum after the filler would re-plan anyway and hide a wrong plan.
    await svc.db.raw('ALTER TABLE orders SET (autovacuum_enabled = false)');
    const depsOn = (on: Db) => ({ db: on, outbox: new Outbox(on, svc.running.services.queues, svc.running.services.log), config: svc.config });
    const confirm = async (on: Db = db) => {
      const msisdn = msisdnOf(nextPhone());
      const [c] = await on('customers').insert({ msisdn }).returning('id');
      const placed = await placeBuyOrder(depsOn(on), { customerId: Number(c.id), msisdn, amountKes: 100, priceCentsPerGram: 1_000_000, gramsUg: 10_000, sourceKey: `plan:${msisdn}` });
      expect(placed).toMatchObject({ ok: true, created: true });
    };
    try {
      // Past plpgsql's five custom plans: from then on the generic plan made now is kept for this connection.
      for (let i = 0; i < 8; i++) await confirm();
      // 20,000 buys of other customers, as if placed since.
      await db.raw(`INSERT INTO customers (msisdn) SELECT '2547' || lpad((90000000 + g)::text, 8, '0') FROM generate_series(1, 20000) g`);
      await db.raw(
        `INSERT INTO orders (id, reference, kind, customer_id, msisdn, amount_cents, price_cents_per_gram, grams_ug, status, source_key)
         SELECT gen_random_uuid(), 'PLAN' || c.id, 'buy', c.id, c.msisdn, 10000, 1000000, 10000, 'stk_sent', 'plan-filler:' || c.id
           FROM customers c WHERE c.msisdn LIKE '25479%'`,
      );
      // The counters of the current transaction: what this very confirm read of the orders table.
      const read = await db.transaction(async (trx) => {
        await confirm(trx as unknown as Db);
        return (await trx.raw(`SELECT seq_scan, seq_tup_read + coalesce(idx_tup_fetch, 0) AS n FROM pg_stat_xact_user_tables WHERE relname = 'orders'`)).rows[0];
      });
      expect({ seqScans: Number(read.seq_scan), fewRows: Number(read.n) < 100 }).toEqual({ seqScans: 0, fewRows: true });
    } finally {
      await db.destroy();
      await svc.db.raw('ALTER TABLE orders RESET (autovacuum_enabled)');
    }
  });

  test('every function that runs with sequential scans off also keeps its generic plans (else it is planned on every call)', async () => {
    // A CREATE OR REPLACE in a later migration clears a function's settings: such a migration must set both again.
    const rows: Array<{ proname: string; proconfig: string[] }> = (
      await svc.db.raw(`SELECT proname, proconfig FROM pg_proc WHERE pronamespace = 'public'::regnamespace AND proconfig IS NOT NULL ORDER BY proname`)
    ).rows;
    const seqscanOff = rows.filter((r) => r.proconfig.includes('enable_seqscan=off'));
    expect(seqscanOff.map((r) => r.proname)).toEqual(['check_daily_limit', 'ledger_apply', 'ledger_create_transfers', 'ledger_resolve_transfers', 'place_buy_order']);
    for (const r of seqscanOff) expect({ fn: r.proname, config: r.proconfig }).toEqual({ fn: r.proname, config: expect.arrayContaining(['plan_cache_mode=force_generic_plan']) as unknown });
  });
});
