import nock from 'nock';
import { createPostedTransfer, accountIdByCode } from '../../src/ledger/ledger';
import { reconcileStkPayments } from '../../src/payments/buy/reconcile-stk-payments';
import { DARAJA_HOST, expectBooksBalanced, fundPoolGrams, startTestService, waitFor, type TestService } from '../support/harness';
import { postCallback } from '../support/http';
import { buyUntilPushed, customerGold, orderStatus, poolAccount } from '../support/flows';
import { msisdnOf, nextPhone } from '../support/phones';
import { backdate, mockStkQuery, type CapturedQuery } from '../support/reconcile';
import { mockAtSmsAccepted, stkCallbackBody, type CapturedSms } from '../support/vendors';

/**
 * Reconciliation, driven directly: the service's own schedule runs once at start-up (nothing is due
 * then) and not again within the test, so each test decides when a run happens by moving the order's
 * clock back (backdate) and calling the use case.
 */
describe('STK reconciliation', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ RECONCILE_INTERVAL_MS: '3600000', RECONCILE_AFTER_SECONDS: '180', RECONCILE_RETRY_SECONDS: '30', RECONCILE_GIVE_UP_SECONDS: '900' });
    await fundPoolGrams(svc.db, 10);
  });
  afterEach(async () => {
    await expectBooksBalanced(svc.db);
    nock.cleanAll();
    // Payments a test left open are parked, so that no later test's run asks about them.
    await svc.db('stk_payments').whereNull('settled_at').update({ next_query_at: svc.db.raw(`now() + interval '1 day'`) });
  });
  afterAll(() => svc.close());

  const reconcile = () => reconcileStkPayments(svc.running.services);
  const payment = (orderId: string) => svc.db('stk_payments').where({ order_id: orderId }).first();
  const alerts = (orderId: string) => svc.db('ops_alerts').where({ order_id: orderId }).select('kind', 'severity');

  async function pushed(amountKes = 500) {
    const phone = nextPhone();
    const { order, checkoutRequestId } = await buyUntilPushed(svc, { phoneNumber: phone, amountKes });
    return { order, checkoutRequestId, phone, msisdn: msisdnOf(phone) };
  }
  const success = (checkoutRequestId: string, msisdn: string, over: Partial<Parameters<typeof stkCallbackBody>[0]> = {}) =>
    stkCallbackBody({ checkoutRequestId, resultCode: 0, amount: 500, receipt: `R${Date.now().toString(36).toUpperCase()}${Math.floor(Math.random() * 1000)}`, phone: Number(msisdn), ...over });

  describe('payments without a callback', () => {
    test('when the callback is late and not yet RECONCILE_AFTER_SECONDS old, then nothing is asked', async () => {
      const { order } = await pushed();
      const asked: CapturedQuery[] = [];
      const query = mockStkQuery(new Map(), asked);
      await backdate(svc.db, order.id, 100);
      expect(await reconcile()).toMatchObject({ queried: 0 });
      expect(query.isDone()).toBe(false);
    });

    test('when Query says paid, then the payment settles exactly as a callback would, without a receipt number, settled_by query', async () => {
      const sms: CapturedSms[] = [];
      mockAtSmsAccepted(sms);
      const { order, checkoutRequestId } = await pushed();
      const before = await customerGold(svc, order.customer_id);
      const asked: CapturedQuery[] = [];
      mockStkQuery(new Map([[checkoutRequestId, { resultCode: 0 }]]), asked);
      await backdate(svc.db, order.id, 200);

      expect(await reconcile()).toMatchObject({ queried: 1, settled: 1 });

      expect(asked).toEqual([{ checkoutRequestId }]);
      expect(await orderStatus(svc, order.id)).toBe('paid');
      expect(await svc.db('transfers').where({ pending_id: `buy-${order.id}` }).first()).toMatchObject({ status: 'posted', amount: order.grams_ug });
      expect((await customerGold(svc, order.customer_id)).credits_posted - before.credits_posted).toBe(order.grams_ug);
      expect(await payment(order.id)).toMatchObject({ settled_by: 'query', matched_by: null, result_code: 0, mpesa_receipt: null, query_attempts: 1 });
      await waitFor(() => Promise.resolve(sms.length === 1), 'the receipt SMS');
      expect(sms[0]!.form.get('message')).toMatch(/^Gold purchase confirmed\. 0\.0588 g for KES 500 at KES 8,500\/g\. Gold balance [\d.]+ g\.$/);
    });

    test('when Query says the customer cancelled, then the reservation is voided, the order fails and the SMS says why', async () => {
      const sms: CapturedSms[] = [];
      mockAtSmsAccepted(sms);
      const { order, checkoutRequestId } = await pushed();
      const pool = await poolAccount(svc);
      mockStkQuery(new Map([[checkoutRequestId, { resultCode: 1032, resultDesc: 'Request cancelled by user' }]]));
      await backdate(svc.db, order.id, 200);

      expect(await reconcile()).toMatchObject({ queried: 1, settled: 1 });

      expect(await svc.db('orders').where({ id: order.id }).first()).toMatchObject({ status: 'failed', failure_code: 'stk_1032' });
      expect(await svc.db('transfers').where({ pending_id: `buy-${order.id}` }).first()).toMatchObject({ status: 'voided' });
      expect((await poolAccount(svc)).debits_pending).toBe(pool.debits_pending - order.grams_ug);
      expect(await payment(order.id)).toMatchObject({ settled_by: 'query', result_code: 1032, result_desc: 'Request cancelled by user' });
      await waitFor(() => Promise.resolve(sms.length === 1), 'the failure SMS');
      expect(sms[0]!.form.get('message')).toMatch(/you cancelled the M-Pesa request/);
    });

    test('when Query says "being processed", then nothing changes and it asks again only after the backoff', async () => {
      const { order, checkoutRequestId } = await pushed();
      const asked: CapturedQuery[] = [];
      mockStkQuery(new Map([[checkoutRequestId, 'pending']]), asked, 5);
      await backdate(svc.db, order.id, 200);

      expect(await reconcile()).toMatchObject({ queried: 1, pending: 1, settled: 0 });
      const first = await payment(order.id);
      expect(first).toMatchObject({ query_attempts: 1, settled_by: null, last_query_result: 'pending' });
      const { rows } = await svc.db.raw(`SELECT extract(epoch FROM next_query_at - now()) AS wait FROM stk_payments WHERE id = ?`, [first.id]);
      expect(Number(rows[0].wait)).toBeGreaterThan(25);
      expect(Number(rows[0].wait)).toBeLessThanOrEqual(30);

      expect(await reconcile()).toMatchObject({ queried: 0 }); // not due yet
      await svc.db('stk_payments').where({ id: first.id }).update({ next_query_at: svc.db.raw(`now() - interval '1 second'`) });
      expect(await reconcile()).toMatchObject({ queried: 1, pending: 1 });
      const { rows: again } = await svc.db.raw(`SELECT extract(epoch FROM next_query_at - now()) AS wait FROM stk_payments WHERE id = ?`, [first.id]);
      expect(Number(again[0].wait)).toBeGreaterThan(55); // doubled
      expect(asked).toHaveLength(2);
      expect(await orderStatus(svc, order.id)).toBe('stk_sent');
      expect(await svc.db('transfers').where({ pending_id: `buy-${order.id}` }).first()).toBeUndefined();
    });

    test('when no final answer comes within RECONCILE_GIVE_UP_SECONDS, then the reservation expires, the customer is told and operators are alerted', async () => {
      const sms: CapturedSms[] = [];
      mockAtSmsAccepted(sms);
      const { order, checkoutRequestId } = await pushed();
      const pool = await poolAccount(svc);
      const asked: CapturedQuery[] = [];
      mockStkQuery(new Map([[checkoutRequestId, 'pending']]), asked);
      await backdate(svc.db, order.id, 901);

      expect(await reconcile()).toMatchObject({ queried: 1, expired: 1 });

      expect(asked).toHaveLength(1); // one last question before giving up
      expect(await svc.db('orders').where({ id: order.id }).first()).toMatchObject({ status: 'expired', failure_code: 'expired' });
      expect(await svc.db('transfers').where({ pending_id: `buy-${order.id}` }).first()).toMatchObject({ status: 'expired', amount: order.grams_ug });
      expect((await poolAccount(svc)).debits_pending).toBe(pool.debits_pending - order.grams_ug);
      expect(await customerGold(svc, order.customer_id)).toMatchObject({ credits_pending: 0 });
      expect(await payment(order.id)).toMatchObject({ settled_by: 'expiry', mpesa_receipt: null });
      expect(await alerts(order.id)).toEqual([{ kind: 'payment_unconfirmed', severity: 'warn' }]);
      await waitFor(() => Promise.resolve(sms.length === 1), 'the expiry SMS');
      expect(sms[0]!.form.get('message')).toBe('We got no M-Pesa confirmation for your gold purchase of KES 500, so it was closed. If you were charged, you will still get your gold and an SMS.');
      expect(await reconcile()).toMatchObject({ queried: 0, expired: 0 });
    });

    test('when Daraja fails to answer the Query (HTML 503), then it asks again later and still expires at the limit', async () => {
      const { order, checkoutRequestId } = await pushed();
      mockStkQuery(new Map([[checkoutRequestId, 'error']]));
      await backdate(svc.db, order.id, 200);
      expect(await reconcile()).toMatchObject({ queried: 1, pending: 1 });
      expect(await payment(order.id)).toMatchObject({ query_attempts: 1, last_query_result: expect.stringMatching(/^error http_503/) });
      mockAtSmsAccepted([]);
      mockStkQuery(new Map([[checkoutRequestId, 'error']]));
      await backdate(svc.db, order.id, 1000);
      await svc.db('stk_payments').where({ order_id: order.id }).update({ next_query_at: null });
      expect(await reconcile()).toMatchObject({ queried: 1, expired: 1 });
      expect(await orderStatus(svc, order.id)).toBe('expired');
    });

    test('when Daraja answers the Query with spike arrest, then the run stops asking and the rest wait for the next run', async () => {
      const a = await pushed();
      const b = await pushed();
      const asked: string[] = [];
      nock(DARAJA_HOST)
        .post('/mpesa/stkpushquery/v1/query')
        .times(2)
        .reply((_uri, body) => {
          asked.push(String((body as Record<string, unknown>).CheckoutRequestID));
          return [500, { requestId: 'q', errorCode: '500.003.02', errorMessage: 'Spike arrest violation' }];
        });
      await backdate(svc.db, a.order.id, 200);
      await backdate(svc.db, b.order.id, 200);

      expect(await reconcile()).toMatchObject({ queried: 1, pending: 1 });

      expect(asked).toHaveLength(1);
      const unasked = asked[0] === a.checkoutRequestId ? b : a;
      expect(await payment(unasked.order.id)).toMatchObject({ query_attempts: 0, next_query_at: null });
      expect(await svc.db('stk_payments').where({ checkout_request_id: asked[0] }).first()).toMatchObject({ query_attempts: 1, last_query_result: expect.stringMatching(/^error 500\.003\.02/) });
      // Settle both, so that no later test's run finds them due.
      mockAtSmsAccepted([], undefined, 2);
      for (const p of [a, b]) await postCallback(svc.url, stkCallbackBody({ checkoutRequestId: p.checkoutRequestId, resultCode: 1032 }));
    });

    test('when a second reconciliation run starts while the first is asking, then it does not ask about the same payment', async () => {
      const { order, checkoutRequestId } = await pushed();
      mockAtSmsAccepted([]);
      const asked: string[] = [];
      let second: Awaited<ReturnType<typeof reconcile>> | null = null;
      nock(DARAJA_HOST)
        .post('/mpesa/stkpushquery/v1/query')
        .times(2)
        .reply((_uri, body, answer) => {
          asked.push(String((body as Record<string, unknown>).CheckoutRequestID));
          void (async () => {
            // Another worker's run, while this Query is in flight.
            if (asked.length === 1) second = await reconcile();
            answer(null, [200, { ResponseCode: '0', ResponseDescription: 'ok', MerchantRequestID: 'm', CheckoutRequestID: checkoutRequestId, ResultCode: '0', ResultDesc: 'The service request is processed successfully.' }]);
          })();
        });
      await backdate(svc.db, order.id, 200);

      const first = await reconcile();

      expect(first).toMatchObject({ queried: 1, settled: 1 });
      expect(second).toMatchObject({ queried: 0 });
      expect(asked).toEqual([checkoutRequestId]);
      expect(await orderStatus(svc, order.id)).toBe('paid');
    });
  });

  describe('callback and Query together', () => {
    test('when the callback arrives while a Query is on its way, then the callback wins and the Query answer changes nothing', async () => {
      mockAtSmsAccepted([]);
      const { order, checkoutRequestId, msisdn } = await pushed();
      // While Daraja is answering the Query, the success callback arrives and is settled; the Query's
      // answer, coming after it, says "cancelled": a stale answer that must not overwrite the success.
      let callbackStatus = 0;
      nock(DARAJA_HOST)
        .post('/mpesa/stkpushquery/v1/query')
        .reply((_uri, _body, answer) => {
          void (async () => {
            callbackStatus = (await postCallback(svc.url, success(checkoutRequestId, msisdn, { receipt: 'CBWINS0001' }))).status;
            answer(null, [200, { ResponseCode: '0', ResponseDescription: 'ok', MerchantRequestID: 'm', CheckoutRequestID: checkoutRequestId, ResultCode: '1032', ResultDesc: 'Request cancelled by user' }]);
          })();
        });
      await backdate(svc.db, order.id, 200);
      expect(await reconcile()).toMatchObject({ queried: 1, settled: 0 });
      expect(callbackStatus).toBe(200);

      expect(await orderStatus(svc, order.id)).toBe('paid');
      expect(await payment(order.id)).toMatchObject({ settled_by: 'callback', matched_by: 'checkout_id', result_code: 0, mpesa_receipt: 'CBWINS0001' });
      expect(await svc.db('transfers').where({ pending_id: `buy-${order.id}` }).first()).toMatchObject({ status: 'posted' });
    });

    test('when the callback follows a Query success, then its receipt number is stored and nothing is credited twice', async () => {
      mockAtSmsAccepted([]);
      const { order, checkoutRequestId, msisdn } = await pushed();
      mockStkQuery(new Map([[checkoutRequestId, { resultCode: 0 }]]));
      await backdate(svc.db, order.id, 200);
      await reconcile();
      const credited = await customerGold(svc, order.customer_id);

      const ack = await postCallback(svc.url, success(checkoutRequestId, msisdn, { receipt: 'LATEREF001' }));

      expect(ack.status).toBe(200);
      expect(await customerGold(svc, order.customer_id)).toEqual(credited);
      expect(await payment(order.id)).toMatchObject({ settled_by: 'query', mpesa_receipt: 'LATEREF001', matched_by: 'checkout_id' });
      expect(await svc.db('mpesa_callbacks').where({ checkout_request_id: checkoutRequestId }).first()).toMatchObject({ outcome: 'receipt_added' });
      expect(await svc.db('sms_messages').where({ dedupe_key: `buy-receipt-${order.id}` }).count({ n: '*' })).toEqual([{ n: 1 }]);
    });

    test('when a failure callback contradicts a Query success, then the gold stays credited and an ops alert is raised', async () => {
      mockAtSmsAccepted([]);
      const { order, checkoutRequestId } = await pushed();
      mockStkQuery(new Map([[checkoutRequestId, { resultCode: 0 }]]));
      await backdate(svc.db, order.id, 200);
      await reconcile();
      const credited = await customerGold(svc, order.customer_id);

      await postCallback(svc.url, stkCallbackBody({ checkoutRequestId, resultCode: 1032 }));

      expect(await orderStatus(svc, order.id)).toBe('paid');
      expect(await customerGold(svc, order.customer_id)).toEqual(credited);
      expect(await alerts(order.id)).toEqual([{ kind: 'conflicting_results', severity: 'error' }]);
    });
  });

  describe('late callbacks', () => {
    async function expiredOrder() {
      const p = await pushed();
      mockStkQuery(new Map([[p.checkoutRequestId, 'pending']]));
      mockAtSmsAccepted([], undefined, 1, p.msisdn);
      await backdate(svc.db, p.order.id, 901);
      await reconcile();
      expect(await orderStatus(svc, p.order.id)).toBe('expired');
      await waitFor(() => svc.db('sms_messages').where({ dedupe_key: `buy-expired-${p.order.id}`, status: 'sent' }).first(), 'the expiry SMS');
      return p;
    }

    test('when a success callback arrives after the order expired, then the customer still gets the gold under a new reservation', async () => {
      const { order, checkoutRequestId, msisdn } = await expiredOrder();
      const sms: CapturedSms[] = [];
      mockAtSmsAccepted(sms, undefined, 1, msisdn);
      const before = await customerGold(svc, order.customer_id);
      const pool = await poolAccount(svc);

      const ack = await postCallback(svc.url, success(checkoutRequestId, msisdn, { receipt: 'LATEPAID01' }));

      expect(ack).toMatchObject({ status: 200, json: { ResultCode: 0 } });
      expect(await svc.db('orders').where({ id: order.id }).first()).toMatchObject({ status: 'paid', failure_code: null });
      expect(await svc.db('transfers').where({ id: `buy-${order.id}-late` }).first()).toMatchObject({ status: 'pending', amount: order.grams_ug });
      expect(await svc.db('transfers').where({ pending_id: `buy-${order.id}-late` }).first()).toMatchObject({ status: 'posted' });
      expect(await svc.db('transfers').where({ pending_id: `buy-${order.id}` }).first()).toMatchObject({ status: 'expired' });
      expect((await customerGold(svc, order.customer_id)).credits_posted - before.credits_posted).toBe(order.grams_ug);
      expect((await poolAccount(svc)).debits_posted - pool.debits_posted).toBe(order.grams_ug);
      expect(await payment(order.id)).toMatchObject({ settled_by: 'callback', mpesa_receipt: 'LATEPAID01' });
      expect(await svc.db('mpesa_callbacks').where({ checkout_request_id: checkoutRequestId }).first()).toMatchObject({ outcome: 'late_paid' });
      await waitFor(() => Promise.resolve(sms.length === 1), 'the late receipt');
      expect(sms[0]!.form.get('message')).toMatch(/^Your M-Pesa payment LATEPAID01 reached us late\. Your gold purchase is confirmed after all: 0\.0588 g for KES 500\./);

      // The same callback again: still one credit.
      await postCallback(svc.url, success(checkoutRequestId, msisdn, { receipt: 'LATEPAID01' }));
      expect((await customerGold(svc, order.customer_id)).credits_posted - before.credits_posted).toBe(order.grams_ug);
    });

    test('when a success callback follows a failure callback, then the success still wins', async () => {
      mockAtSmsAccepted([], undefined, 2);
      const { order, checkoutRequestId, msisdn } = await pushed();
      await postCallback(svc.url, stkCallbackBody({ checkoutRequestId, resultCode: 1037 }));
      expect(await orderStatus(svc, order.id)).toBe('failed');
      const before = await customerGold(svc, order.customer_id);

      await postCallback(svc.url, success(checkoutRequestId, msisdn));

      expect(await orderStatus(svc, order.id)).toBe('paid');
      expect((await customerGold(svc, order.customer_id)).credits_posted - before.credits_posted).toBe(order.grams_ug);
      expect(await svc.db('transfers').where({ pending_id: `buy-${order.id}` }).first()).toMatchObject({ status: 'voided' });
      expect(await svc.db('transfers').where({ pending_id: `buy-${order.id}-late` }).first()).toMatchObject({ status: 'posted' });
    });

    test('when the pool cannot cover a late payment, then the order goes to review with an ops alert and the customer is told', async () => {
      const { order, checkoutRequestId, msisdn } = await expiredOrder();
      const sms: CapturedSms[] = [];
      mockAtSmsAccepted(sms, undefined, 1, msisdn);
      // Take every available gram out of the pool (back to issuance).
      const poolId = await accountIdByCode(svc.db, 'pool');
      const available = (await poolAccount(svc)).credits_posted - (await poolAccount(svc)).debits_posted - (await poolAccount(svc)).debits_pending;
      await createPostedTransfer(svc.db, { id: `drain-${order.id}`, debitAccountId: poolId, creditAccountId: await accountIdByCode(svc.db, 'issuance'), amount: available, reference: 'test drain' });
      const before = await customerGold(svc, order.customer_id);

      const ack = await postCallback(svc.url, success(checkoutRequestId, msisdn, { receipt: 'NOGOLD0001' }));

      expect(ack.status).toBe(200);
      expect(await svc.db('orders').where({ id: order.id }).first()).toMatchObject({ status: 'review', failure_code: 'late_payment_unallocated' });
      expect(await customerGold(svc, order.customer_id)).toEqual(before);
      expect(await svc.db('transfers').where({ id: `buy-${order.id}-late` }).first()).toBeUndefined();
      expect(await payment(order.id)).toMatchObject({ settled_by: 'callback', mpesa_receipt: 'NOGOLD0001' });
      expect(await alerts(order.id)).toEqual(expect.arrayContaining([{ kind: 'late_payment_unallocated', severity: 'error' }]));
      await waitFor(() => Promise.resolve(sms.length === 1), 'the review SMS');
      expect(sms[0]!.form.get('message')).toBe('We received your M-Pesa payment NOGOLD0001 of KES 500 but could not add your gold yet. Our team will credit it or refund you within 1 working day.');
      // Give the pool its gold back for the following tests.
      await createPostedTransfer(svc.db, { id: `refill-${order.id}`, debitAccountId: await accountIdByCode(svc.db, 'issuance'), creditAccountId: poolId, amount: available, reference: 'test refill' });
    });

    test('when a failure callback arrives after the order expired, then it is recorded and nothing else changes', async () => {
      const { order, checkoutRequestId } = await expiredOrder();
      const before = await customerGold(svc, order.customer_id);
      await postCallback(svc.url, stkCallbackBody({ checkoutRequestId, resultCode: 1037, resultDesc: 'DS timeout user cannot be reached' }));
      expect(await orderStatus(svc, order.id)).toBe('expired');
      expect(await customerGold(svc, order.customer_id)).toEqual(before);
      expect(await payment(order.id)).toMatchObject({ settled_by: 'expiry', result_code: 1037, result_desc: 'DS timeout user cannot be reached' });
      expect(await svc.db('mpesa_callbacks').where({ checkout_request_id: checkoutRequestId }).first()).toMatchObject({ outcome: 'late_failure' });
    });

    test('when a late success does not match the order (amount differs), then nothing is credited and the order goes to review', async () => {
      const { order, checkoutRequestId, msisdn } = await expiredOrder();
      const before = await customerGold(svc, order.customer_id);
      await postCallback(svc.url, success(checkoutRequestId, msisdn, { amount: 50 }));
      expect(await svc.db('orders').where({ id: order.id }).first()).toMatchObject({ status: 'review', failure_code: 'callback_mismatch' });
      expect(await customerGold(svc, order.customer_id)).toEqual(before);
      expect(await svc.db('transfers').where({ id: `buy-${order.id}-late` }).first()).toBeUndefined();
    });
  });
});
