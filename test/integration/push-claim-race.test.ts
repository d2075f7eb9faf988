import type { Knex } from 'knex';
import { randomUUID } from 'node:crypto';
import { newReference } from '../../src/payments/buy/place-buy-order';
import { claimPushes } from '../../src/payments/buy/push-batch';
import nock from 'nock';
import { runBuyOrder } from '../../src/payments/buy/run-buy-order';
import { DARAJA_HOST, expectBooksBalanced, fundPoolGrams, startTestService, waitFor, type TestService } from '../support/harness';
import { mockDarajaToken, mockStkPushAccepted, type CapturedStk } from '../support/vendors';
import { heldAnswer, lockWaiters, secondWorker } from '../support/interleave';
import { msisdnOf, nextPhone } from '../support/phones';

/**
 * Two copies of one buy job (a stalled BullMQ job taken over while the first still runs) must push once. The claim
 * locks the order and only THEN reads the payment: a statement that joins the payment and waits for the order lock
 * would, under READ COMMITTED, re-read the order after the wait but keep the payment row from before it, see
 * push_attempts 0, and push again (found by an outside review of issue 11's batched claim).
 */
jest.setTimeout(60_000);

describe('concurrent push claims for one order', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ ROLE: 'web' });
  });
  afterAll(() => svc?.close());

  test('a claim queued behind another claim of the same order must not claim it again', async () => {
    const db = svc.running.services.db;
    const msisdn = msisdnOf(nextPhone());
    const [c] = await db('customers').insert({ msisdn }).returning('id');
    const id = randomUUID();
    await db('orders').insert({ id, reference: newReference(), kind: 'buy', customer_id: c.id, msisdn, amount_cents: 10_000, price_cents_per_gram: 1_000_000, grams_ug: 1000, status: 'reserved', source_key: `t:${id}` });
    await db('stk_payments').insert({ order_id: id, msisdn, amount_kes: 100 });

    // Job A (another worker): exactly what claimPushes does, held open at its last step.
    const trxA = await db.transaction();
    await trxA.raw('SELECT id FROM orders WHERE id = ? FOR UPDATE', [id]);
    await trxA('orders').where({ id, status: 'reserved' }).update({ status: 'stk_requested' });
    await trxA('stk_payments').where({ order_id: id }).update({ push_attempts: trxA.raw('push_attempts + 1'), push_outcome: 'in_flight', push_started_at: trxA.fn.now() });

    // Job B (the same order's job taken over after a stall, or a duplicate): its claim waits for A's lock.
    const b = claimPushes(db, [id]);
    // Only once B's claim is queued on A's lock does the interleaving exist.
    await waitFor(async () => Number((await db.raw(`SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%FOR UPDATE%'`)).rows[0].n) > 0, "B's claim waiting for A's order lock");
    await trxA.commit(); // A now calls Daraja.

    const [answer] = await b;
    const row = await db('stk_payments').where({ order_id: id }).first('push_attempts', 'push_outcome');
    // B sees A's in_flight attempt: the outcome of A's push is unknown to B, so B must not push.
    expect({ answer: answer!.state, attempts: row.push_attempts }).toEqual({ answer: 'in_flight', attempts: 1 });
  });

  test('the same buy job run at once by two worker processes pushes the order once', async () => {
    const a = svc.running.services;
    const other = secondWorker(svc);
    const b = other.services;
    try {
      await fundPoolGrams(a.db, 10);
      let pushesSeen = 0;
      for (let round = 0; round < 10; round++) {
        const msisdn = msisdnOf(nextPhone());
        const [c] = await a.db('customers').insert({ msisdn }).returning('id');
        const id = randomUUID();
        await a.db('orders').insert({ id, reference: newReference(), kind: 'buy', customer_id: c.id, msisdn, amount_cents: 10_000, price_cents_per_gram: 1_000_000, grams_ug: 1000, status: 'created', source_key: `t:${id}` });
        await a.db('stk_payments').insert({ order_id: id, msisdn, amount_kes: 100 });
        const stk: CapturedStk[] = [];
        mockDarajaToken('t', 2);
        mockStkPushAccepted(stk, 2);
        await Promise.all([runBuyOrder(a, id, false), runBuyOrder(b, id, false)]);
        nock.cleanAll();
        pushesSeen = Math.max(pushesSeen, stk.length);
        if (stk.length > 1) break;
      }
      expect(pushesSeen).toBe(1);
    } finally {
      await other.close();
    }
  });

  test("a push that failed for good is recorded with the order's failure: no other copy can push in between", async () => {
    const a = svc.running.services;
    const other = secondWorker(svc);
    let holder: Knex.Transaction | undefined;
    try {
      await fundPoolGrams(a.db, 1);
      const msisdn = msisdnOf(nextPhone());
      const [c] = await a.db('customers').insert({ msisdn }).returning('id');
      const id = randomUUID();
      await a.db('orders').insert({ id, reference: newReference(), kind: 'buy', customer_id: c.id, msisdn, amount_cents: 10_000, price_cents_per_gram: 1_000_000, grams_ug: 1000, status: 'created', source_key: `t:${id}` });
      await a.db('stk_payments').insert({ order_id: id, msisdn, amount_kes: 100 });

      // Copy A's push reaches Daraja and is refused for good (a permanent 400), but only when the test lets it answer.
      const answerToA = heldAnswer([400, { requestId: 'r', errorCode: '400.002.02', errorMessage: 'Bad Request - Invalid PhoneNumber' }]);
      mockDarajaToken('t', 2);
      nock(DARAJA_HOST).post('/mpesa/stkpush/v1/processrequest').reply(answerToA.reply);
      const jobA = runBuyOrder(a, id, false);
      await answerToA.reached;

      // While A waits on Daraja, something holds the order (a callback, a reconciliation) and copy B's claim queues on it.
      holder = await a.db.transaction();
      await holder.raw('SELECT id FROM orders WHERE id = ? FOR UPDATE', [id]);
      const claimB = claimPushes(other.services.db, [id]);
      await waitFor(async () => (await lockWaiters(a.db)) >= 1, "B's claim waiting for the order");
      // Daraja refuses A's push; A records that and fails the order, behind B in the queue for the order lock.
      answerToA.release();
      await waitFor(async () => (await lockWaiters(a.db)) >= 2, "A's failure waiting for the order");
      await holder.commit();

      const [answer] = await claimB;
      await jobA;
      nock.cleanAll();
      const order = await a.db('orders').where({ id }).first('status');
      // B must see A's attempt as still in flight: were "not delivered" committed before the order's failure, B
      // would claim and push while A releases the reservation, and a paid second push would find a failed order.
      expect({ b: answer!.state, status: order.status }).toEqual({ b: 'in_flight', status: 'failed' });
      await expectBooksBalanced(a.db);
    } finally {
      // A wait that timed out must not leave the order locked: the test would hang instead of saying what failed.
      if (holder && !holder.isCompleted()) await holder.rollback();
      await other.close();
    }
  });
});
