import { randomUUID } from 'node:crypto';
import { checkDailyLimit } from '../../src/orders/daily-limits';
import { placeBuyOrder, type PlaceBuyOrder } from '../../src/payments/buy/place-buy-order';
import { newReference } from '../../src/payments/buy/place-buy-order';
import { startTestService, waitFor, type TestService } from '../support/harness';
import { msisdnOf, nextPhone } from '../support/phones';

/**
 * The confirm in one statement (place_buy_order, migration 018; its daily limit through check_daily_limit since 021).
 * Its answers are pinned here to fixed expectations: the daily limit (a table, also asked of checkDailyLimit, the
 * way sales and Paybill reach the same SQL function), one open buy per phone, the idempotent source key. The service runs as `web` only,
 * so the buy jobs it relays stay in the queue.
 */
describe('the buy confirm, one statement', () => {
  let svc: TestService;
  const LIMIT_KES = 1_000;
  beforeAll(async () => {
    svc = await startTestService({ ROLE: 'web', BUY_DAILY_LIMIT_KES: String(LIMIT_KES) });
  });
  afterAll(() => svc.close());

  const deps = () => svc.running.services;
  async function newCustomer() {
    const msisdn = msisdnOf(nextPhone());
    const [c] = await svc.db('customers').insert({ msisdn }).returning('id');
    return { customerId: c.id as number, msisdn };
  }
  const request = (c: { customerId: number; msisdn: string }, amountKes: number, sourceKey = `test:${randomUUID()}`): PlaceBuyOrder => ({
    ...c, amountKes, priceCentsPerGram: 850_000, gramsUg: amountKes * 100, sourceKey,
  });
  /** An earlier order of the customer (another phone, so the open-buy rule stays out of the way). */
  async function pastOrder(customerId: number, amountKes: number, status: string, createdAt?: string) {
    await svc.db('orders').insert({
      id: randomUUID(), reference: newReference(), kind: 'buy', customer_id: customerId, msisdn: msisdnOf(nextPhone()), amount_cents: amountKes * 100,
      price_cents_per_gram: 850_000, grams_ug: 1, status, source_key: `past:${randomUUID()}`, ...(createdAt ? { created_at: svc.db.raw(createdAt) } : {}),
    });
  }
  /** What checkDailyLimit answers for the same request (in a transaction rolled back). */
  async function tsLimit(r: PlaceBuyOrder) {
    const trx = await svc.db.transaction();
    try {
      return await checkDailyLimit(trx, 'buy', { ...r, amountCents: r.amountKes * 100 }, LIMIT_KES);
    } finally {
      await trx.rollback();
    }
  }
  const NAIROBI_DAY_START = `(date_trunc('day', (now() AT TIME ZONE 'UTC') + interval '3 hours') - interval '3 hours') AT TIME ZONE 'UTC'`;

  test('when a buy is placed, then the order, its stk payment and its buy job are recorded, and the job is relayed after the commit', async () => {
    const c = await newCustomer();
    const placed = await placeBuyOrder(deps(), request(c, 500));
    expect(placed).toMatchObject({ ok: true, created: true, reference: expect.stringMatching(/^GLD[A-Z2-9]{9}$/) });
    if (!placed.ok) throw new Error('not placed');
    expect(await svc.db('orders').where({ id: placed.orderId }).first()).toMatchObject({ status: 'created', amount_cents: 50_000, kind: 'buy', grams_ug: 50_000, msisdn: c.msisdn });
    expect(await svc.db('stk_payments').where({ order_id: placed.orderId }).first()).toMatchObject({ amount_kes: 500, msisdn: c.msisdn, push_attempts: 0 });
    const job = await svc.db('outbox').where({ job_id: `buy-${placed.orderId}` }).first();
    expect(job).toMatchObject({ queue: 'buy', payload: { orderId: placed.orderId } });
    expect(job.relayed_at).not.toBeNull();
  });

  test('when the same request comes again, then it finds its order (created: false) and writes nothing more, even over the limit', async () => {
    const c = await newCustomer();
    const r = request(c, LIMIT_KES);
    const first = await placeBuyOrder(deps(), r);
    const again = await placeBuyOrder(deps(), r);
    expect(first.ok && again).toEqual({ ok: true, orderId: first.ok && first.orderId, reference: first.ok && first.reference, created: false });
    expect(await svc.db('stk_payments').where({ msisdn: c.msisdn })).toHaveLength(1);
    expect(await svc.db('outbox').where('job_id', 'like', `buy-${first.ok && first.orderId}`)).toHaveLength(1);
  });

  test.each([
    ['nothing bought today', [], 1_000, { ok: true }],
    ['700 bought today, 300 asked', [[700, 'paid']], 300, { ok: true }],
    ['700 bought today, 301 asked', [[700, 'stk_sent']], 301, { ok: false, remainingKes: 300 }],
    ['failed, expired, refunded and closed orders do not count', [[700, 'failed'], [700, 'expired'], [700, 'refunded'], [700, 'closed']], 1_000, { ok: true }],
    ['an order in review counts', [[999, 'review']], 2, { ok: false, remainingKes: 1 }],
    ['over the limit already: nothing left', [[900, 'paid'], [900, 'paid']], 1, { ok: false, remainingKes: 0 }],
    ['yesterday (Nairobi) does not count', [[1_000, 'paid', `${NAIROBI_DAY_START} - interval '1 second'`]], 1_000, { ok: true }],
    ['the first second of today (Nairobi) counts', [[1_000, 'paid', NAIROBI_DAY_START]], 1, { ok: false, remainingKes: 0 }],
  ] as Array<[string, Array<[number, string, string?]>, number, { ok: boolean; remainingKes?: number }]>)(
    'daily limit: when %s, then the answer is checkDailyLimit\'s',
    async (_what, past, amountKes, expected) => {
      const c = await newCustomer();
      for (const [kes, status, at] of past) await pastOrder(c.customerId, kes, status, at);
      const r = request(c, amountKes);
      expect(await tsLimit(r)).toEqual(expected);
      const placed = await placeBuyOrder(deps(), r);
      if (expected.ok) expect(placed).toMatchObject({ ok: true, created: true });
      else expect(placed).toEqual({ ok: false, reason: 'daily_limit', remainingKes: expected.remainingKes });
    },
  );

  test('when another buy of the phone is still open, then payment_pending and nothing is written', async () => {
    const c = await newCustomer();
    expect(await placeBuyOrder(deps(), request(c, 100))).toMatchObject({ ok: true, created: true });
    const other = await newCustomer();
    // Another customer on the same phone: the customer lock does not serialise them, the phone rule applies.
    expect(await placeBuyOrder(deps(), request({ customerId: other.customerId, msisdn: c.msisdn }, 100))).toEqual({ ok: false, reason: 'payment_pending' });
    expect(await svc.db('orders').where({ customer_id: other.customerId })).toHaveLength(0);
  });

  test('when two confirms of one phone race past the open-buy check, then the unique index decides and the loser is told payment_pending', async () => {
    const a = await newCustomer();
    const b = await newCustomer();
    // A's order is inserted but not committed: B's check cannot see it, B's insert waits on the unique index.
    const trx = await svc.db.transaction();
    await trx('orders').insert({
      id: randomUUID(), reference: newReference(), kind: 'buy', customer_id: a.customerId, msisdn: a.msisdn, amount_cents: 10_000,
      price_cents_per_gram: 850_000, grams_ug: 1, status: 'created', source_key: `race:${randomUUID()}`,
    });
    const loser = placeBuyOrder(deps(), request({ customerId: b.customerId, msisdn: a.msisdn }, 100));
    await waitFor(
      async () => (await svc.db.raw(`SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%place_buy_order%'`)).rows.length > 0,
      'the second confirm to wait on the unique index',
    );
    await trx.commit();
    expect(await loser).toEqual({ ok: false, reason: 'payment_pending' });
    expect(await svc.db('orders').where({ customer_id: b.customerId })).toHaveLength(0);
  });

  test('a confirm costs 2 statements in all (13 before issue 11): one to place, then the relay of its job (the job added from memory, the row marked by one UPDATE)', async () => {
    const c = await newCustomer();
    const sql: string[] = [];
    const onQuery = (q: { sql: string }) => sql.push(q.sql);
    svc.db.on('query', onQuery);
    try {
      expect(await placeBuyOrder(deps(), request(c, 100))).toMatchObject({ ok: true, created: true });
    } finally {
      svc.db.off('query', onQuery);
    }
    expect(sql.filter((s) => s.includes('place_buy_order'))).toHaveLength(1);
    expect(sql).toHaveLength(2);
    expect(sql[1]).toMatch(/^update "outbox" set "relayed_at"/);
  });
});
