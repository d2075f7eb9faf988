import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import nock from 'nock';
import type { Db } from '../../src/db/knex';
import { reserveFromPool, transferIds } from '../../src/ledger/gold';
import { createPendingTransfer, ensureCustomerAccount, InsufficientFunds, resolvePendingTransfer, SYSTEM_ACCOUNTS, accountIdByCode } from '../../src/ledger/ledger';
import { failBuyOrder } from '../../src/payments/buy/buy-outcomes';
import { newReference } from '../../src/payments/buy/place-buy-order';
import { reserveBatcherFor, reserveBuyOrders, type ReserveDeps } from '../../src/payments/buy/reserve-batch';
import { runBuyOrder } from '../../src/payments/buy/run-buy-order';
import { claimPushes, pushBatchersFor } from '../../src/payments/buy/push-batch';
import { loadOrder, transitionOrder } from '../../src/orders/orders';
import type { OrderStatus } from '../../src/orders/order-states';
import { DARAJA_HOST, expectBooksBalanced, fundPoolGrams, startTestService, type TestService } from '../support/harness';
import { msisdnOf, nextPhone } from '../support/phones';
import { mockDarajaToken, mockStkPushAccepted, type CapturedStk } from '../support/vendors';

/**
 * The buy job's reservation step, batched (reserve-batch.ts), against the one-by-one step it replaced (kept
 * below, word for word, as the reference). Orders are seeded straight into the database and the services run
 * as `web` only, so no worker takes a job behind the test's back.
 */
jest.setTimeout(240_000);

/** The reservation step as each buy job ran it before issue 11: its own transaction per job. */
async function reserveOneByOne(deps: ReserveDeps, orderId: string): Promise<'unknown_order' | 'pool_empty' | 'go_on'> {
  const order = await loadOrder(deps.db, orderId);
  if (!order) return 'unknown_order';
  if (order.status !== 'created') return 'go_on';
  return deps.outbox.transaction(async (trx) => {
    const locked = await loadOrder(trx, order.id, { lock: true });
    if (locked?.status !== 'created') return 'go_on';
    try {
      await reserveFromPool(trx, { id: transferIds.buyReservation(order.id), customerId: order.customer_id, gramsUg: order.grams_ug, reference: order.reference });
    } catch (err) {
      if (!(err instanceof InsufficientFunds)) throw err;
      await failBuyOrder(trx, deps.outbox, order, ['created'], { code: 'pool_empty', description: 'gold pool cannot cover the order', reason: 'poolEmpty' });
      return 'pool_empty';
    }
    await transitionOrder(trx, order.id, ['created'], 'reserved');
    return 'go_on';
  });
}

interface Seed {
  gramsUg: number;
  status: OrderStatus;
  /** Index of an earlier seed whose customer this order shares (a customer with two orders). */
  sameCustomerAs?: number;
  language: 'en' | 'sw';
}

/** Seeds the orders (customer, order, stk payment) and returns their ids, in seed order. */
async function seedOrders(db: Db, seeds: readonly Seed[]): Promise<string[]> {
  const ids: string[] = [];
  const customers: number[] = [];
  for (const [i, s] of seeds.entries()) {
    const msisdn = msisdnOf(nextPhone());
    const shared = s.sameCustomerAs !== undefined && s.sameCustomerAs < i ? customers[s.sameCustomerAs] : undefined;
    const customerId = shared ?? (await db('customers').insert({ msisdn, language: s.language }).returning('id'))[0].id;
    customers.push(customerId);
    const id = randomUUID();
    await db('orders').insert({
      id, reference: newReference(), kind: 'buy', customer_id: customerId, msisdn, amount_cents: 10_000 + i * 100,
      price_cents_per_gram: 1_000_000, grams_ug: s.gramsUg, status: s.status, source_key: `test:${id}`,
    });
    await db('stk_payments').insert({ order_id: id, msisdn, amount_kes: 100 + i });
    ids.push(id);
  }
  return ids;
}

async function poolRow(db: Db) {
  return db('accounts').where({ code: SYSTEM_ACCOUNTS.pool }).first('debits_pending', 'debits_posted', 'credits_pending', 'credits_posted');
}

/**
 * Makes the pool's free gold exactly `target` by holding the rest in a ballast reservation (voided afterwards),
 * so both databases start each run with the same, possibly too small, pool.
 */
async function setPoolAvailable(db: Db, target: number, ballastId: string): Promise<() => Promise<void>> {
  const p = await poolRow(db);
  const available = Number(p.credits_posted) - Number(p.debits_posted) - Number(p.debits_pending);
  if (available < target) await fundPoolGrams(db, Math.ceil((target - available) / 1_000_000) + 1);
  const q = await poolRow(db);
  const extra = Number(q.credits_posted) - Number(q.debits_posted) - Number(q.debits_pending) - target;
  if (extra === 0) return async () => undefined;
  const [c] = await db('customers').insert({ msisdn: msisdnOf(nextPhone()) }).returning('id');
  const account = await ensureCustomerAccount(db, c.id);
  await createPendingTransfer(db, { id: ballastId, debitAccountId: await accountIdByCode(db, SYSTEM_ACCOUNTS.pool), creditAccountId: account, amount: extra, reference: 'ballast' });
  return async () => {
    await resolvePendingTransfer(db, ballastId, 'voided');
  };
}

/** Every row the reservation step writes for these orders, ids replaced by the order's place in the run. */
async function snapshot(db: Db, ids: readonly string[]) {
  const key = (s: string) => ids.reduce((acc, id, i) => acc.split(id).join(`O${i}`), s);
  const orders = await db('orders').whereIn('id', ids).select('id', 'status', 'failure_code', 'failure_reason', 'grams_ug');
  const transfers = await db('transfers')
    .whereRaw(`split_part(id, '/', 1) = ANY(?)`, [ids.map((id) => transferIds.buyReservation(id))])
    .select('id', 'pending_id', 'status', 'amount', 'reference');
  const sms = await db('sms_messages').whereIn('dedupe_key', ids.map((id) => `buy-failed-${id}`)).select('id', 'body', 'purpose', 'status', 'dedupe_key');
  const outbox = await db('outbox').whereIn('job_id', sms.map((s) => `sms-${s.id}`)).select('queue', 'job_id');
  const smsKey = new Map(sms.map((s) => [`sms-${s.id}`, key(s.dedupe_key)]));
  const refs = new Map((await db('orders').whereIn('id', ids).select('id', 'reference')).map((o) => [o.reference as string, o.id as string]));
  const sortBy = <T>(rows: T[], f: (r: T) => string) => rows.sort((a, b) => f(a).localeCompare(f(b)));
  return {
    orders: sortBy(orders.map((o) => ({ ...o, id: key(o.id) })), (o) => o.id),
    transfers: sortBy(transfers.map((t) => ({ ...t, id: key(t.id), pending_id: t.pending_id && key(t.pending_id), reference: key(refs.get(t.reference) ?? t.reference) })), (t) => t.id),
    sms: sortBy(sms.map(({ id: _id, ...s }) => ({ ...s, dedupe_key: key(s.dedupe_key) })), (s) => s.dedupe_key),
    outbox: sortBy(outbox.map((o) => ({ queue: o.queue, sms: smsKey.get(o.job_id) })), (o) => String(o.sms)),
  };
}

const seedArb: fc.Arbitrary<Seed> = fc.record({
  gramsUg: fc.integer({ min: 1, max: 5_000 }),
  status: fc.constantFrom<OrderStatus>('created', 'created', 'created', 'created', 'failed', 'stk_sent'),
  sameCustomerAs: fc.option(fc.nat(8), { nil: undefined }),
  language: fc.constantFrom<'en' | 'sw'>('en', 'sw'),
});

/** A run: orders, the jobs (indexes into the orders; -1 an unknown order; duplicates allowed), batch cuts, pool size. */
const runArb = fc
  .array(seedArb, { minLength: 1, maxLength: 10 })
  .chain((seeds) =>
    fc.record({
      seeds: fc.constant(seeds),
      jobs: fc.array(fc.integer({ min: -1, max: seeds.length - 1 }), { minLength: 1, maxLength: 16 }),
      cuts: fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 16, maxLength: 16 }),
      pool: fc.integer({ min: 0, max: 20_000 }),
    }),
  );

describe('the buy job reservation, batched', () => {
  let batched: TestService;
  let oneByOne: TestService;
  beforeAll(async () => {
    [batched, oneByOne] = await Promise.all([startTestService({ ROLE: 'web' }), startTestService({ ROLE: 'web' })]);
  });
  afterEach(async () => {
    nock.cleanAll();
    await expectBooksBalanced(batched.db);
    await expectBooksBalanced(oneByOne.db);
  });
  afterAll(() => Promise.all([batched?.close(), oneByOne?.close()]));

  test('when the same buy jobs run batched (random batch boundaries) and one by one, then they answer the same and leave the same rows', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(runArb, async ({ seeds, jobs, cuts, pool }) => {
        run += 1;
        const unknown = randomUUID();
        const results = [];
        for (const [svc, mode] of [[batched, 'batched'], [oneByOne, 'one']] as const) {
          const deps = svc.running.services;
          const ids = await seedOrders(deps.db, seeds);
          const jobIds = jobs.map((j) => (j < 0 ? unknown : ids[j]!));
          const restore = await setPoolAvailable(deps.db, pool, `ballast-${run}`);
          const answers: string[] = [];
          if (mode === 'one') {
            for (const id of jobIds) answers.push(await reserveOneByOne(deps, id));
          } else {
            let at = 0;
            for (const cut of cuts) {
              if (at >= jobIds.length) break;
              const batch = jobIds.slice(at, at + cut);
              answers.push(...(await reserveBuyOrders(deps, batch)).map((a) => a.outcome));
              at += cut;
            }
            if (at < jobIds.length) answers.push(...(await reserveBuyOrders(deps, jobIds.slice(at))).map((a) => a.outcome));
          }
          await restore();
          results.push({ answers, rows: await snapshot(deps.db, ids), pool: await poolRow(deps.db) });
        }
        expect(results[0]).toEqual(results[1]);
      }),
      { numRuns: Number(process.env.BUY_BATCH_RUNS ?? 40), seed: process.env.FC_SEED ? Number(process.env.FC_SEED) : undefined },
    );
  });

  test.each([
    ['a duplicate job, a failed order, an order already sent, and enough gold', [0, 1, 0, 2, 3, 4], ['created', 'created', 'failed', 'stk_sent', 'created'], 100_000, [0, 1, 4]],
    ['a pool too small for all (the third and fourth do not fit)', [0, 1, 2, 3, 1], ['created', 'created', 'created', 'created'], 2_500, [0, 1]],
    ['an empty pool', [0, 1, 1], ['created', 'created'], 0, []],
  ] as Array<[string, number[], OrderStatus[], number, number[]]>)('whole buy jobs, %s: run at once (batched) and one after the other, they push the same orders and leave the same rows', async (_what, jobs, statuses, pool, expectPushed) => {
    const results = [];
    for (const [svc, mode] of [[batched, 'at once'], [oneByOne, 'one by one']] as const) {
      const deps = svc.running.services;
      const ids = await seedOrders(deps.db, statuses.map((status) => ({ gramsUg: 1_000, status, language: 'en' as const })));
      const restore = await setPoolAvailable(deps.db, pool, `ballast-job-${randomUUID()}`);
      const stk: CapturedStk[] = [];
      mockDarajaToken();
      mockStkPushAccepted(stk, jobs.length);
      const jobIds = jobs.map((j) => ids[j]!);
      if (mode === 'at once') await Promise.all(jobIds.map((id) => runBuyOrder(deps, id, false)));
      else for (const id of jobIds) await runBuyOrder(deps, id, false);
      nock.cleanAll();
      await restore();
      const payments = await deps.db('stk_payments').whereIn('order_id', ids).select('order_id', 'push_attempts', 'push_outcome', 'checkout_request_id');
      results.push({
        pushed: await (async () => {
          const refs = (await deps.db('orders').whereIn('id', ids).select('id', 'reference')).map((o) => [ids.indexOf(o.id), o.reference] as const);
          return stk.map((p) => refs.find(([, ref]) => ref === p.body.AccountReference)![0]).sort((a, b) => a - b);
        })(),
        rows: await snapshot(deps.db, ids),
        payments: payments
          .map((p) => ({ order: ids.indexOf(p.order_id), attempts: p.push_attempts, outcome: p.push_outcome, accepted: p.checkout_request_id !== null }))
          .sort((a, b) => a.order - b.order),
      });
    }
    expect(results[0]!.pushed).toEqual(expectPushed);
    expect(results[0]).toEqual(results[1]);
  });

  test('when Daraja receives the pushes of a batch, then their reservations and their in_flight claims are already committed (seen from another connection)', async () => {
    await fundPoolGrams(batched.db, 1);
    const deps = batched.running.services;
    const ids = await seedOrders(deps.db, Array.from({ length: 4 }, () => ({ gramsUg: 1_000, status: 'created' as const, language: 'en' as const })));
    const refs = new Map((await deps.db('orders').whereIn('id', ids).select('id', 'reference')).map((o) => [o.reference as string, o.id as string]));
    const seen: Array<{ transfer: string | undefined; outcome: string; status: string }> = [];
    mockDarajaToken();
    nock(DARAJA_HOST)
      .post('/mpesa/stkpush/v1/processrequest')
      .times(4)
      .reply(async (_uri, body) => {
        const id = refs.get((body as { AccountReference: string }).AccountReference)!;
        // The service's pool, another connection: only committed rows are visible.
        const transfer = await deps.db('transfers').where({ id: transferIds.buyReservation(id) }).first('status');
        const payment = await deps.db('stk_payments').where({ order_id: id }).first('push_outcome');
        const order = await deps.db('orders').where({ id }).first('status');
        seen.push({ transfer: transfer?.status, outcome: payment.push_outcome, status: order.status });
        return [200, { MerchantRequestID: `mr-${id}`, CheckoutRequestID: `co-${id}`, ResponseCode: '0', ResponseDescription: 'Success', CustomerMessage: 'Success' }];
      });
    await Promise.all(ids.map((id) => runBuyOrder(deps, id, false)));
    expect(seen).toEqual(Array(4).fill({ transfer: 'pending', outcome: 'in_flight', status: 'stk_requested' }));
  });

  test('when 16 orders are reserved in one batch, then it costs 5 statements (BEGIN, lock, ledger, move, COMMIT) whatever the batch size', async () => {
    await fundPoolGrams(batched.db, 1);
    const deps = batched.running.services;
    // Customers who bought before: their ledger account exists (a first buy opens it: one more statement per batch).
    const ids = await seedOrders(deps.db, Array.from({ length: 16 }, () => ({ gramsUg: 1_000, status: 'created' as const, language: 'en' as const })));
    const warm = await seedOrders(deps.db, [{ gramsUg: 1, status: 'created', language: 'en' }]);
    await reserveBuyOrders(deps, warm);
    const owners = await deps.db('orders').whereIn('id', ids).select('customer_id');
    for (const o of owners) await ensureCustomerAccount(deps.db, o.customer_id);
    const sql: string[] = [];
    const onQuery = (q: { sql: string }) => sql.push(q.sql);
    deps.db.on('query', onQuery);
    try {
      const answers = await reserveBuyOrders(deps, ids);
      expect(answers.map((a) => a.outcome)).toEqual(Array(16).fill('go_on'));
    } finally {
      deps.db.off('query', onQuery);
    }
    expect(sql.map((s) => s.split(/\s+/)[0]!.toUpperCase())).toEqual(['BEGIN;', 'SELECT', 'SELECT', 'UPDATE', 'COMMIT;']);
    expect(await deps.db('orders').whereIn('id', ids).distinct('status')).toEqual([{ status: 'reserved' }]);
  });

  test('when 16 buy jobs run at once, then their reservation is one batch, their push claim one batch, each accepted push recorded in batches: about 1 statement per job (22 before issue 11)', async () => {
    await fundPoolGrams(batched.db, 1);
    const deps = batched.running.services;
    const stk: CapturedStk[] = [];
    mockDarajaToken();
    mockStkPushAccepted(stk, 17);
    // One job first: the Daraja token is fetched and stored (not a per-job cost).
    const [first] = await seedOrders(deps.db, [{ gramsUg: 1_000, status: 'created', language: 'en' }]);
    await runBuyOrder(deps, first!, false);
    const ids = await seedOrders(deps.db, Array.from({ length: 16 }, () => ({ gramsUg: 1_000, status: 'created' as const, language: 'en' as const })));
    const owners = await deps.db('orders').whereIn('id', ids).select('customer_id');
    for (const o of owners) await ensureCustomerAccount(deps.db, o.customer_id);
    const sql: string[] = [];
    const onQuery = (q: { sql: string }) => sql.push(q.sql);
    deps.db.on('query', onQuery);
    try {
      await Promise.all(ids.map((id) => runBuyOrder(deps, id, false)));
    } finally {
      deps.db.off('query', onQuery);
    }
    expect(stk).toHaveLength(17);
    expect(await deps.db('orders').whereIn('id', ids).distinct('status')).toEqual([{ status: 'stk_sent' }]);
    expect(sql.filter((s) => s.includes('ledger_create_transfers'))).toHaveLength(1);
    expect(sql.filter((s) => s.includes('"push_outcome" from "stk_payments"'))).toHaveLength(1);
    // Daraja's answers arrive when they do: the records form as many batches as the answers' event-loop turns.
    const recordBatches = sql.filter((s) => s.includes('merchant_request_id')).length;
    expect(recordBatches).toBeGreaterThanOrEqual(1);
    // reservation: BEGIN, lock, ledger, move, COMMIT; claim: BEGIN, lock, payments, move, claim, COMMIT;
    // record: BEGIN, lock, ids, move, COMMIT
    expect(sql).toHaveLength(11 + 5 * recordBatches);
  });

  test('when the same buy job runs twice at once (its claims in one batch), then the order is pushed once', async () => {
    await fundPoolGrams(batched.db, 1);
    const deps = batched.running.services;
    const stk: CapturedStk[] = [];
    mockDarajaToken();
    const scope = mockStkPushAccepted(stk, 2);
    const [id] = await seedOrders(deps.db, [{ gramsUg: 1_000, status: 'created', language: 'en' }]);
    await Promise.all([runBuyOrder(deps, id!, false), runBuyOrder(deps, id!, false)]);
    expect(stk).toHaveLength(1);
    expect(scope.isDone()).toBe(false);
    expect(await deps.db('stk_payments').where({ order_id: id }).first()).toMatchObject({ push_attempts: 1, push_outcome: 'accepted' });
    expect(await deps.db('orders').where({ id }).first()).toMatchObject({ status: 'stk_sent' });
  });

  test('when a statement throws in the middle of a batch, then every job of it is run again one by one: none lost, none reserved twice', async () => {
    await fundPoolGrams(batched.db, 1);
    const deps = batched.running.services;
    const ids = await seedOrders(deps.db, Array.from({ length: 8 }, (_, i) => ({ gramsUg: 1_000 + i, status: 'created' as const, language: 'en' as const })));
    // Poison: a reservation already stored under order 3's transfer id with another amount makes the ledger statement throw.
    const poison = ids[3]!;
    const order = (await loadOrder(deps.db, poison))!;
    const account = await ensureCustomerAccount(deps.db, order.customer_id);
    await createPendingTransfer(deps.db, { id: transferIds.buyReservation(poison), debitAccountId: await accountIdByCode(deps.db, SYSTEM_ACCOUNTS.pool), creditAccountId: account, amount: 999, reference: order.reference });
    const ledgerStatements: string[] = [];
    const onQuery = (q: { sql: string }) => q.sql.includes('ledger_create_transfers') && ledgerStatements.push(q.sql);
    deps.db.on('query', onQuery);
    let answers: PromiseSettledResult<unknown>[];
    try {
      const batcher = reserveBatcherFor(deps);
      answers = await Promise.allSettled(ids.map((id) => batcher.submit(id)));
    } finally {
      deps.db.off('query', onQuery);
    }
    expect(answers.map((a) => a.status)).toEqual(ids.map((id) => (id === poison ? 'rejected' : 'fulfilled')));
    // One batch that threw, then each of the 8 alone.
    expect(ledgerStatements).toHaveLength(9);
    const statuses = await deps.db('orders').whereIn('id', ids).select('id', 'status');
    expect(Object.fromEntries(statuses.map((s) => [s.id, s.status]))).toEqual(Object.fromEntries(ids.map((id) => [id, id === poison ? 'created' : 'reserved'])));
    const reservations = await deps.db('transfers').whereIn('id', ids.map((id) => transferIds.buyReservation(id))).select('id', 'amount');
    expect(reservations).toHaveLength(8);
    expect(reservations.find((r) => r.id === transferIds.buyReservation(poison))!.amount).toBe(999);
    // Cleanup: the poison reservation goes back to the pool (books must balance).
    await resolvePendingTransfer(deps.db, transferIds.buyReservation(poison), 'voided');
  });

  test('when the push-claim statement throws for one job of a batch, then each job is claimed alone: every good order claimed once, none twice', async () => {
    await fundPoolGrams(batched.db, 1);
    const deps = batched.running.services;
    const ids = await seedOrders(deps.db, Array.from({ length: 5 }, () => ({ gramsUg: 1_000, status: 'created' as const, language: 'en' as const })));
    await reserveBuyOrders(deps, ids);
    // Poison: an id Postgres cannot cast to uuid fails the batch's lock statement.
    const items = [...ids.slice(0, 2), 'not-a-uuid', ...ids.slice(2)];
    const claims = await Promise.allSettled(items.map((id) => pushBatchersFor(deps).claim.submit(id)));
    expect(claims.map((c) => (c.status === 'fulfilled' ? c.value.state : 'rejected'))).toEqual(['claimed', 'claimed', 'rejected', 'claimed', 'claimed', 'claimed']);
    const payments = await deps.db('stk_payments').whereIn('order_id', ids).select('push_attempts', 'push_outcome');
    expect(payments).toEqual(Array(5).fill({ push_attempts: 1, push_outcome: 'in_flight' }));
    expect(await deps.db('orders').whereIn('id', ids).distinct('status')).toEqual([{ status: 'stk_requested' }]);
    // A second claim of the same orders finds the attempt in flight: never pushed again.
    expect((await claimPushes(deps.db, ids)).map((c) => c.state)).toEqual(Array(5).fill('in_flight'));
    // Leave the books as a settlement would: the reservations go back.
    for (const id of ids) await resolvePendingTransfer(deps.db, transferIds.buyReservation(id), 'voided');
  });
});
