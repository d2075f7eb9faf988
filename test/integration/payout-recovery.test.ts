import type { Knex } from 'knex';
import nock from 'nock';
import { runPayout } from '../../src/payments/sell/run-payout';
import { reconcilePayouts } from '../../src/payments/sell/reconcile-payouts';
import { b2cTestEnv, B2C_RESULT_PATH, B2C_STATUS_PATH } from '../support/b2c-env';
import { DARAJA_HOST, expectBooksBalanced, fundPoolGrams, startTestService, waitFor, withRedis, type TestService } from '../support/harness';
import { postCallback } from '../support/http';
import {
  B2C_PATH,
  b2cSuccess,
  customerAccount,
  mockB2c,
  mockStatusQueries,
  newReceipt,
  orderOf,
  payoutOf,
  placeSale,
  SALE_UG,
  saleTransfers,
  statusAnswer,
  waitForOrderStatus,
  type CapturedB2c,
  type CapturedStatusQuery,
} from '../support/sales';
import { heldAnswer, lockWaiters, secondWorker } from '../support/interleave';
import { mockAtSmsAccepted, mockDarajaToken, type CapturedSms } from '../support/vendors';

/**
 * Payouts whose answer nobody heard. Record before you call: each B2C attempt is committed with an
 * in-flight marker before the request leaves, so a worker killed mid-request leaves evidence that the
 * money may have gone; the re-run never returns the gold on a refusal then. And the reconciliation
 * sweep finds sales M-Pesa went silent about (lost payout or status jobs), asks Transaction Status, and
 * holds them for review with an alert. The use cases are driven directly (runPayout, reconcilePayouts)
 * against the real service's database, queues and callback routes; Daraja is nock.
 */
const B2C_ENV = b2cTestEnv();

afterEach(() => nock.cleanAll());

describe('a B2C attempt is recorded before its request leaves', () => {
  let svc: TestService;
  beforeAll(async () => {
    // The status chain waits an hour: within a test only what the test drives happens.
    svc = await startTestService({ ...B2C_ENV, JOB_ATTEMPTS: '3', JOB_BACKOFF_MS: '30', PAYOUT_RESULT_WAIT_SECONDS: '3600', RECONCILE_INTERVAL_MS: '3600000' });
    await fundPoolGrams(svc.db, 10);
  });
  afterEach(async () => {
    await expectBooksBalanced(svc.db);
    await withRedis((r) => r.del(`${svc.config.queuePrefix}:daraja:token`));
  });
  afterAll(() => svc.close());

  /** The state a worker SIGKILLed mid-request leaves: the order requested, one attempt counted and marked in flight, no answer. */
  async function killedMidRequest() {
    const sale = await placeSale(svc, { job: 'lost' });
    await svc.db('orders').where({ id: sale.orderId }).update({ status: 'payout_requested' });
    await svc.db('payouts').where({ id: sale.payoutId }).update({ status: 'requested', requested_at: svc.db.fn.now(), attempts: 1, in_flight_at: svc.db.fn.now() });
    return sale;
  }

  test('when the B2C request reaches Daraja, then its attempt and in-flight marker are already committed, and the answer clears the marker', async () => {
    const sale = await placeSale(svc, { job: 'lost' });
    mockDarajaToken();
    let seenByDaraja: { attempts: number; in_flight_at: Date | null } | undefined;
    nock(DARAJA_HOST)
      .post(B2C_PATH)
      .reply(async () => {
        // Read on another connection while the request is held here: only what was committed shows.
        seenByDaraja = await svc.db('payouts').where({ id: sale.payoutId }).first('attempts', 'in_flight_at');
        return [200, { ConversationID: 'AG_20261204_inflight01', OriginatorConversationID: 'echo', ResponseCode: '0', ResponseDescription: 'Accept the service request successfully.' }];
      });
    await runPayout(svc.running.services, sale.payoutId, false);
    expect(seenByDaraja?.attempts).toBe(1);
    expect(seenByDaraja?.in_flight_at).toBeInstanceOf(Date);
    expect(await payoutOf(svc, sale.payoutId)).toMatchObject({ status: 'accepted', attempts: 1, in_flight_at: null, maybe_sent: false, conversation_id: 'AG_20261204_inflight01' });
    expect((await orderOf(svc, sale.orderId)).status).toBe('payout_sent');
    // Settle it for the books.
    mockAtSmsAccepted([]);
    await postCallback(svc.url, b2cSuccess({ payoutId: sale.payoutId, receipt: newReceipt() }), B2C_RESULT_PATH);
    expect((await orderOf(svc, sale.orderId)).status).toBe('paid');
  });

  test('when a re-run finds an attempt in flight with no answer and Daraja then refuses outright, then the gold is NOT returned: the attempt counts as maybe sent and Transaction Status is scheduled', async () => {
    const sale = await killedMidRequest();
    const sms: CapturedSms[] = [];
    mockAtSmsAccepted(sms, undefined, 1, sale.msisdn);
    mockDarajaToken();
    const sent: CapturedB2c[] = [];
    mockB2c([400, { requestId: 'r', errorCode: '400.002.02', errorMessage: 'Bad Request - Invalid PartyB' }], sent);

    await runPayout(svc.running.services, sale.payoutId, false);

    // Re-sent with the same OriginatorConversationID (a second payout is impossible at Daraja).
    expect(sent).toEqual([{ originatorConversationId: sale.payoutId }]);
    expect(await payoutOf(svc, sale.payoutId)).toMatchObject({ status: 'requested', attempts: 2, maybe_sent: true, in_flight_at: null });
    expect(await orderOf(svc, sale.orderId)).toMatchObject({ status: 'payout_requested', failure_code: null });
    expect(await saleTransfers(svc, sale.orderId)).toEqual([]);
    expect(await customerAccount(svc, sale.customer.id)).toMatchObject({ debits_pending: SALE_UG, debits_posted: 0 });
    expect(await svc.db('outbox').where({ job_id: `payout-status-${sale.payoutId}-1` }).first()).toMatchObject({ queue: 'payout-status', payload: { payoutId: sale.payoutId, check: 1 } });
    expect(await svc.db('sms_messages').where({ dedupe_key: `sell-failed-${sale.orderId}` }).first()).toBeUndefined();
    expect(sms).toEqual([]);

    // M-Pesa's answer settles it.
    mockAtSmsAccepted([]);
    await postCallback(svc.url, b2cSuccess({ payoutId: sale.payoutId, receipt: newReceipt() }), B2C_RESULT_PATH);
    expect((await orderOf(svc, sale.orderId)).status).toBe('paid');
  });

  test('when a re-run finds an attempt in flight and Daraja answers "Duplicate OriginatorConversationID", then the payout counts as accepted', async () => {
    const sale = await killedMidRequest();
    mockDarajaToken();
    mockB2c([500, { requestId: 'r', errorCode: '500.002.1001', errorMessage: 'Duplicate OriginatorConversationID' }]);
    await runPayout(svc.running.services, sale.payoutId, false);
    expect(await payoutOf(svc, sale.payoutId)).toMatchObject({ status: 'accepted', attempts: 2, maybe_sent: true, in_flight_at: null });
    expect((await orderOf(svc, sale.orderId)).status).toBe('payout_sent');
    mockAtSmsAccepted([]);
    await postCallback(svc.url, b2cSuccess({ payoutId: sale.payoutId, receipt: newReceipt() }), B2C_RESULT_PATH);
    expect((await orderOf(svc, sale.orderId)).status).toBe('paid');
  });

  test('when the earlier attempt was answered (no marker left), then a definite refusal still returns the gold at once', async () => {
    const sale = await placeSale(svc, { job: 'lost' });
    mockDarajaToken();
    mockAtSmsAccepted([]);
    mockB2c([400, { requestId: 'r', errorCode: '400.002.02', errorMessage: 'Bad Request - Invalid PartyB' }]);
    await runPayout(svc.running.services, sale.payoutId, false);
    expect(await orderOf(svc, sale.orderId)).toMatchObject({ status: 'failed', failure_code: 'request_400.002.02' });
    expect(await saleTransfers(svc, sale.orderId)).toEqual([{ status: 'voided' }]);
  });

  test('when a refusal for good is heard while another copy of the job begins an attempt, then that attempt decides: the gold is NOT returned', async () => {
    const sale = await placeSale(svc, { job: 'lost' });
    const a = svc.running.services;
    // A second worker process running the same payout job (a stalled job taken over).
    const other = secondWorker(svc);
    let holder: Knex.Transaction | undefined;
    try {
      // Copy A's request reaches Daraja and is refused for good (a 400), when the test lets it answer; copy B's is accepted.
      const answerToA = heldAnswer([400, { requestId: 'r', errorCode: '400.002.02', errorMessage: 'Bad Request - Invalid PartyB' }]);
      mockDarajaToken('t', 2);
      nock(DARAJA_HOST).post(B2C_PATH).reply(answerToA.reply);
      const sentByB: CapturedB2c[] = [];
      mockB2c('accepted', sentByB);
      const jobA = runPayout(a, sale.payoutId, false);
      await answerToA.reached;

      // While A waits on Daraja, something holds the order (a result callback, the sweep); B's attempt queues on it.
      holder = await svc.db.transaction();
      await holder.raw('SELECT id FROM orders WHERE id = ? FOR UPDATE', [sale.orderId]);
      const jobB = runPayout(other.services, sale.payoutId, false);
      await waitFor(async () => (await lockWaiters(svc.db)) >= 1, "B's attempt waiting for the order");
      // Daraja refuses A's request; A records that and decides the sale, behind B in the queue for the order lock.
      answerToA.release();
      await waitFor(async () => (await lockWaiters(svc.db)) >= 2, "A's decision waiting for the order");
      await holder.commit();
      await Promise.all([jobA, jobB]);

      // B's request went out and M-Pesa accepted it. Had A's cleared marker been committed before its decision, B would
      // have counted nothing in flight, and A would have returned the gold of a sale M-Pesa is now paying.
      expect(sentByB).toHaveLength(1);
      expect({ order: (await orderOf(svc, sale.orderId)).status, goldBack: await saleTransfers(svc, sale.orderId) }).toEqual({ order: 'payout_sent', goldBack: [] });
      // Settle it for the books.
      mockAtSmsAccepted([]);
      await postCallback(svc.url, b2cSuccess({ payoutId: sale.payoutId, receipt: newReceipt() }), B2C_RESULT_PATH);
      expect((await orderOf(svc, sale.orderId)).status).toBe('paid');
    } finally {
      if (holder && !holder.isCompleted()) await holder.rollback();
      await other.close();
    }
  });
});

describe('the payout sweep (reconciliation)', () => {
  let svc: TestService;
  const WAIT = 3600;
  const AFTER = 180;
  beforeAll(async () => {
    svc = await startTestService({
      ...B2C_ENV,
      JOB_BACKOFF_MS: '30',
      PAYOUT_RESULT_WAIT_SECONDS: String(WAIT),
      PAYOUT_STATUS_CHECKS: '2',
      RECONCILE_INTERVAL_MS: '3600000',
      RECONCILE_AFTER_SECONDS: String(AFTER),
      RECONCILE_RETRY_SECONDS: '30',
      RECONCILE_GIVE_UP_SECONDS: '900',
    });
    await fundPoolGrams(svc.db, 10);
  });
  afterEach(async () => {
    await expectBooksBalanced(svc.db);
    await withRedis((r) => r.del(`${svc.config.queuePrefix}:daraja:token`));
    // Sales a test left open are parked, so that no later test's run asks about them.
    await svc.db('payouts').whereNull('settled_at').update({ next_sweep_at: svc.db.raw(`now() + interval '1 day'`), sweep_checks: 1 });
  });
  afterAll(() => svc.close());

  const sweep = () => reconcilePayouts(svc.running.services);
  /** As if nothing had been heard of the payout (and the order placed) `seconds` ago. */
  const silentFor = async (sale: { orderId: string; payoutId: string }, seconds: number) => {
    const ago = svc.db.raw(`now() - make_interval(secs => ?)`, [seconds]);
    await svc.db('payouts').where({ id: sale.payoutId }).update({ updated_at: ago });
    await svc.db('orders').where({ id: sale.orderId }).update({ created_at: ago });
  };
  /** The backoff has passed. */
  const nextSweepDue = (payoutId: string) => svc.db('payouts').where({ id: payoutId }).update({ next_sweep_at: svc.db.raw(`now() - interval '1 second'`) });

  /** A sale Daraja accepted, whose Result never came and whose status check is an hour away (as good as lost). */
  async function acceptedSale() {
    mockDarajaToken();
    mockB2c('accepted');
    const sale = await placeSale(svc);
    await waitForOrderStatus(svc, sale.orderId, ['payout_sent'], 'Daraja to accept the payout');
    return sale;
  }

  test('when a payout has been silent for less than PAYOUT_RESULT_WAIT_SECONDS + RECONCILE_AFTER_SECONDS, then nothing is asked', async () => {
    const sale = await acceptedSale();
    await silentFor(sale, WAIT + AFTER - 30);
    const asked = mockStatusQueries();
    expect(await sweep()).toEqual({ asked: 0, reviewed: 0, unsent: 0 });
    expect(asked.isDone()).toBe(false);
  });

  test('when an accepted payout hears nothing (its status job lost), then the sweep asks Transaction Status with backoff and after the last check holds the sale for review with a payout_unconfirmed alert; the gold stays reserved', async () => {
    const sale = await acceptedSale();
    await silentFor(sale, WAIT + AFTER + 1);
    const queries: CapturedStatusQuery[] = [];
    mockStatusQueries(queries, 2);

    expect(await sweep()).toEqual({ asked: 1, reviewed: 0, unsent: 0 });
    expect(queries.map((q) => q.payoutId)).toEqual([sale.payoutId]);
    const first = await payoutOf(svc, sale.payoutId);
    expect(first).toMatchObject({ sweep_checks: 1, status_checks: 2 });
    // Backoff: RECONCILE_RETRY_SECONDS before the next check.
    expect(new Date(first.next_sweep_at).getTime() - Date.now()).toBeGreaterThan(20_000);
    expect(await svc.db('payout_status_queries').where({ payout_id: sale.payoutId }).select('check_no', 'query_originator_conversation_id')).toEqual([
      { check_no: 2, query_originator_conversation_id: queries[0]!.queryId },
    ]);
    // "Not found" decides nothing.
    expect((await postCallback(svc.url, statusAnswer(queries[0]!, 'not_found'), B2C_STATUS_PATH)).status).toBe(200);
    expect(await sweep()).toEqual({ asked: 0, reviewed: 0, unsent: 0 }); // still within the backoff

    await nextSweepDue(sale.payoutId);
    expect(await sweep()).toEqual({ asked: 1, reviewed: 0, unsent: 0 });
    expect(queries.map((q) => q.payoutId)).toEqual([sale.payoutId, sale.payoutId]);
    expect(new Date((await payoutOf(svc, sale.payoutId)).next_sweep_at).getTime() - Date.now()).toBeGreaterThan(50_000); // doubled
    expect((await orderOf(svc, sale.orderId)).status).toBe('payout_sent');

    await nextSweepDue(sale.payoutId);
    expect(await sweep()).toEqual({ asked: 0, reviewed: 1, unsent: 0 });
    expect(await orderOf(svc, sale.orderId)).toMatchObject({ status: 'review', failure_code: 'payout_unconfirmed' });
    expect(await payoutOf(svc, sale.payoutId)).toMatchObject({ status: 'review', settled_at: null });
    expect(await svc.db('ops_alerts').where({ order_id: sale.orderId }).select('kind', 'severity', 'resolved_at')).toEqual([{ kind: 'payout_unconfirmed', severity: 'error', resolved_at: null }]);
    expect(await saleTransfers(svc, sale.orderId)).toEqual([]);
    expect(await customerAccount(svc, sale.customer.id)).toMatchObject({ debits_pending: SALE_UG, debits_posted: 0 });
    // A held sale is not swept again.
    await nextSweepDue(sale.payoutId);
    expect(await sweep()).toEqual({ asked: 0, reviewed: 0, unsent: 0 });

    // M-Pesa's answer to the sweep's last query arrives at last: it settles the sale and answers the alert.
    mockAtSmsAccepted([]);
    const receipt = newReceipt();
    expect((await postCallback(svc.url, statusAnswer(queries[1]!, { status: 'Completed', receipt }), B2C_STATUS_PATH)).status).toBe(200);
    expect((await orderOf(svc, sale.orderId)).status).toBe('paid');
    expect(await payoutOf(svc, sale.payoutId)).toMatchObject({ status: 'paid', transaction_id: receipt });
    expect(await saleTransfers(svc, sale.orderId)).toEqual([{ status: 'posted' }]);
    expect(await svc.db('ops_alerts').where({ order_id: sale.orderId }).first('resolution')).toEqual({ resolution: "settled by M-Pesa's answer (paid)" });
  });

  test('when the worker died mid-request and the payout job was lost, then the sweep asks Transaction Status and never returns the gold; a "failed" answer does', async () => {
    const sale = await placeSale(svc, { job: 'lost' });
    await svc.db('orders').where({ id: sale.orderId }).update({ status: 'payout_requested' });
    await svc.db('payouts').where({ id: sale.payoutId }).update({ status: 'requested', attempts: 1, in_flight_at: svc.db.fn.now() });
    // Older than RECONCILE_GIVE_UP_SECONDS too: a sale never attempted would be failed by now; this one was attempted.
    await silentFor(sale, WAIT + AFTER + 1);
    const queries: CapturedStatusQuery[] = [];
    mockDarajaToken();
    mockStatusQueries(queries);

    expect(await sweep()).toEqual({ asked: 1, reviewed: 0, unsent: 0 });
    expect(queries.map((q) => q.payoutId)).toEqual([sale.payoutId]);
    expect(await orderOf(svc, sale.orderId)).toMatchObject({ status: 'payout_requested' });
    expect(await customerAccount(svc, sale.customer.id)).toMatchObject({ debits_pending: SALE_UG });

    mockAtSmsAccepted([]);
    expect((await postCallback(svc.url, statusAnswer(queries[0]!, { status: 'Failed' }), B2C_STATUS_PATH)).status).toBe(200);
    expect(await orderOf(svc, sale.orderId)).toMatchObject({ status: 'failed', failure_code: 'b2c_status_failed' });
    expect(await saleTransfers(svc, sale.orderId)).toEqual([{ status: 'voided' }]);
  });

  test('when a sale\'s payout job was lost before any attempt, then after RECONCILE_GIVE_UP_SECONDS it fails, the gold goes back and the seller is told; sooner, nothing happens', async () => {
    const sale = await placeSale(svc, { job: 'lost' });
    const sms: CapturedSms[] = [];
    await silentFor(sale, 800);
    const asked = mockStatusQueries();
    expect(await sweep()).toEqual({ asked: 0, reviewed: 0, unsent: 0 });
    expect((await orderOf(svc, sale.orderId)).status).toBe('reserved');

    mockAtSmsAccepted(sms, undefined, 1, sale.msisdn);
    await silentFor(sale, 901);
    expect(await sweep()).toEqual({ asked: 0, reviewed: 0, unsent: 1 });
    expect(asked.isDone()).toBe(false); // nothing to ask: no request ever left
    expect(await orderOf(svc, sale.orderId)).toMatchObject({ status: 'failed', failure_code: 'payout_not_sent' });
    expect(await saleTransfers(svc, sale.orderId)).toEqual([{ status: 'voided' }]);
    expect(await customerAccount(svc, sale.customer.id)).toMatchObject({ debits_pending: 0, debits_posted: 0 });
    await waitFor(() => Promise.resolve(sms.length === 1), 'the failure SMS');
    expect(sms[0]!.form.get('message')).toMatch(/^Your gold sale of KES 1,000 did not go through/);
  });
});
