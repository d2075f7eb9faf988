import nock from 'nock';
import { createPendingTransfer, accountIdByCode, ensureCustomerAccount } from '../../src/ledger/ledger';
import { findOrCreateCustomer } from '../../src/orders/customers';
import { reconcileStkPayments } from '../../src/payments/buy/reconcile-stk-payments';
import type { Msisdn } from '../../src/lib/msisdn';
import { QUEUE_NAMES } from '../../src/infra/queues';
import { AT_SANDBOX_HOST, DARAJA_HOST, expectBooksBalanced, fundPoolGrams, startTestService, waitFor, withRedis, type TestService } from '../support/harness';
import { dial, postCallback } from '../support/http';
import { customerGold, orderStatus, poolAccount } from '../support/flows';
import { msisdnOf, nextPhone } from '../support/phones';
import { backdate } from '../support/reconcile';
import { freePort } from '../support/sandbox-process';
import { mockAtSmsAccepted, mockDarajaToken, stkCallbackBody, type CapturedSms } from '../support/vendors';

/**
 * Pushes whose outcome we could not see: the request went out, and then the connection reset, the
 * answer timed out, or the process died. No second push; the callback is tied to the order by phone,
 * amount and time; without one, the order expires.
 */
describe('crash safety of the STK push', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ RECONCILE_INTERVAL_MS: '3600000', RECONCILE_GIVE_UP_SECONDS: '900', RECONCILE_MATCH_WINDOW_SECONDS: '3600' });
    await fundPoolGrams(svc.db, 10);
  });
  afterEach(async () => {
    await expectBooksBalanced(svc.db);
    nock.cleanAll();
  });
  afterAll(() => svc.close());

  const reconcile = () => reconcileStkPayments(svc.running.services);
  const payment = (orderId: string) => svc.db('stk_payments').where({ order_id: orderId }).first();

  /** A buy whose push reached Daraja but whose answer we never got (the connection reset). */
  async function unknownPush(phone = nextPhone(), amountKes = 500) {
    mockDarajaToken();
    nock(DARAJA_HOST).post('/mpesa/stkpush/v1/processrequest').replyWithError('socket hang up');
    const { sessionId, last } = await dial(svc.url, ['1', String(amountKes), '1'], { phoneNumber: phone });
    expect(last).toMatch(/^END Request received/);
    const order = await svc.db('orders').where('source_key', 'like', `ussd:%:${sessionId}`).first();
    await waitFor(() => svc.db('stk_payments').where({ order_id: order.id, push_outcome: 'unknown' }).first(), 'the push outcome to be unknown');
    return { order, phone, msisdn: msisdnOf(phone) };
  }
  const success = (checkoutRequestId: string, msisdn: string, receipt: string, amount = 500) =>
    stkCallbackBody({ checkoutRequestId, resultCode: 0, amount, receipt, phone: Number(msisdn) });

  test('when a success callback carries a CheckoutRequestID we never stored, then it is matched by phone, amount and time, and credited once', async () => {
    const sms: CapturedSms[] = [];
    const { order, msisdn } = await unknownPush();
    mockAtSmsAccepted(sms);
    const before = await customerGold(svc, order.customer_id);

    const ack = await postCallback(svc.url, success('ws_CO_never_stored_1', msisdn, 'MATCHED001'));

    expect(ack).toMatchObject({ status: 200, json: { ResultCode: 0 } });
    expect(await orderStatus(svc, order.id)).toBe('paid');
    expect(await payment(order.id)).toMatchObject({
      checkout_request_id: 'ws_CO_never_stored_1',
      merchant_request_id: 'mr-ws_CO_never_stored_1',
      matched_by: 'phone_amount_window',
      settled_by: 'callback',
      mpesa_receipt: 'MATCHED001',
      push_attempts: 1,
    });
    expect((await customerGold(svc, order.customer_id)).credits_posted - before.credits_posted).toBe(order.grams_ug);
    await waitFor(() => Promise.resolve(sms.length === 1), 'the receipt');
    expect(sms[0]!.form.get('message')).toMatch(/M-Pesa ref MATCHED001/);

    // The same callback again finds the payment by its id now: nothing more.
    await postCallback(svc.url, success('ws_CO_never_stored_1', msisdn, 'MATCHED001'));
    expect((await customerGold(svc, order.customer_id)).credits_posted - before.credits_posted).toBe(order.grams_ug);
    const outcomes = (await svc.db('mpesa_callbacks').where({ checkout_request_id: 'ws_CO_never_stored_1' }).orderBy('id').select('outcome')).map((r) => r.outcome);
    expect(outcomes).toEqual(['settled', 'duplicate']);
  });

  test("when M-Pesa's callback for a push arrives before the push's own answer, and that answer is a refusal, then the callback's record stands", async () => {
    const phone = nextPhone();
    const msisdn = msisdnOf(phone);
    mockDarajaToken();
    mockAtSmsAccepted([]);
    // The callback (matched by phone and amount: its CheckoutRequestID was never stored) comes while the push waits for
    // its answer; then the gateway answers the push with a refusal.
    nock(DARAJA_HOST)
      .post('/mpesa/stkpush/v1/processrequest')
      .reply(async () => {
        await postCallback(svc.url, success('ws_CO_callback_first', msisdn, 'CBFIRST001'));
        return [400, { requestId: 'r', errorCode: '400.002.02', errorMessage: 'Bad Request - Invalid PhoneNumber' }];
      });
    const { sessionId } = await dial(svc.url, ['1', '500', '1'], { phoneNumber: phone });
    const order = await svc.db('orders').where('source_key', 'like', `ussd:%:${sessionId}`).first();
    // The buy job ends (completed: a refusal for good does not throw) once it has recorded what it heard.
    const buyQueue = svc.running.services.backends.dashboardQueues().find((q) => q.name === QUEUE_NAMES.buy)!;
    await waitFor(async () => (await (await buyQueue.getJob(`buy-${order.id}`))?.getState()) === 'completed', 'the buy job to finish');
    expect(await payment(order.id)).toMatchObject({ checkout_request_id: 'ws_CO_callback_first', push_outcome: 'accepted', last_push_error: null });
    expect(await orderStatus(svc, order.id)).toBe('paid');
  });

  test('when twin callbacks for a never-stored CheckoutRequestID arrive at once, then the gold is credited once', async () => {
    const { order, msisdn } = await unknownPush();
    mockAtSmsAccepted([]);
    const before = await customerGold(svc, order.customer_id);
    const body = success('ws_CO_never_stored_twins', msisdn, 'TWINS00001');
    const acks = await Promise.all(Array.from({ length: 4 }, () => postCallback(svc.url, body)));
    for (const ack of acks) expect(ack.status).toBe(200);
    expect((await customerGold(svc, order.customer_id)).credits_posted - before.credits_posted).toBe(order.grams_ug);
    expect(await svc.db('transfers').where({ pending_id: `buy-${order.id}` }).count({ n: '*' })).toEqual([{ n: 1 }]);
  });

  test('when the phone or the amount differs, then the callback matches nothing: an orphan with an ops alert, nothing credited', async () => {
    const { order, msisdn } = await unknownPush();
    const pool = await poolAccount(svc);
    for (const [id, body] of [
      ['ws_CO_other_amount', success('ws_CO_other_amount', msisdn, 'ORPHAN0001', 499)],
      ['ws_CO_other_phone', success('ws_CO_other_phone', '254799999999', 'ORPHAN0002')],
    ] as const) {
      expect((await postCallback(svc.url, body)).status).toBe(200);
      expect(await svc.db('mpesa_callbacks').where({ checkout_request_id: id }).first()).toMatchObject({ outcome: 'orphan' });
      expect(await svc.db('ops_alerts').where({ dedupe_key: `orphan-payment-${id}` }).first()).toMatchObject({ kind: 'orphan_payment', severity: 'error', order_id: null });
    }
    expect(await orderStatus(svc, order.id)).toBe('stk_requested');
    expect(await poolAccount(svc)).toEqual(pool);
  });

  test('when a failure callback carries an unknown CheckoutRequestID, then it is kept as an orphan without an alert (no money moved)', async () => {
    await postCallback(svc.url, stkCallbackBody({ checkoutRequestId: 'ws_CO_unknown_failure', resultCode: 1032 }));
    expect(await svc.db('mpesa_callbacks').where({ checkout_request_id: 'ws_CO_unknown_failure' }).first()).toMatchObject({ outcome: 'orphan' });
    expect(await svc.db('ops_alerts').where({ dedupe_key: 'orphan-payment-ws_CO_unknown_failure' }).first()).toBeUndefined();
  });

  test('when two recent unknown pushes have the same phone and amount, then nothing is guessed: an ops alert names both orders', async () => {
    const phone = nextPhone();
    const first = await unknownPush(phone);
    mockAtSmsAccepted([]);
    await backdate(svc.db, first.order.id, 901);
    await reconcile(); // expires the first, so the phone may buy again
    expect(await orderStatus(svc, first.order.id)).toBe('expired');
    const second = await unknownPush(phone);

    await postCallback(svc.url, success('ws_CO_which_one', second.msisdn, 'WHICH00001'));

    expect(await svc.db('mpesa_callbacks').where({ checkout_request_id: 'ws_CO_which_one' }).first()).toMatchObject({ outcome: 'ambiguous' });
    const alert = await svc.db('ops_alerts').where({ kind: 'ambiguous_payment_match' }).first();
    expect(alert.details.orderIds.sort()).toEqual([first.order.id, second.order.id].sort());
    expect(await orderStatus(svc, second.order.id)).toBe('stk_requested');
    expect(await orderStatus(svc, first.order.id)).toBe('expired');
  });

  test('when no callback comes for an unknown push within RECONCILE_GIVE_UP_SECONDS, then the order expires and the customer is told', async () => {
    const { order, msisdn } = await unknownPush();
    const sms: CapturedSms[] = [];
    mockAtSmsAccepted(sms, AT_SANDBOX_HOST, 1, msisdn);
    await backdate(svc.db, order.id, 899);
    expect(await reconcile()).toMatchObject({ expired: 0 });
    await backdate(svc.db, order.id, 901);

    expect(await reconcile()).toMatchObject({ expired: 1, queried: 0 });

    expect(await orderStatus(svc, order.id)).toBe('expired');
    expect(await svc.db('transfers').where({ pending_id: `buy-${order.id}` }).first()).toMatchObject({ status: 'expired' });
    expect(await payment(order.id)).toMatchObject({ settled_by: 'expiry', push_outcome: 'unknown' });
    await waitFor(() => Promise.resolve(sms.length === 1), 'the expiry SMS');
    expect(sms[0]!.form.get('message')).toMatch(/^We got no M-Pesa confirmation/);
  });

  test('when the callback of an unknown push comes after it expired, then it is still matched and the customer gets the gold', async () => {
    const { order, msisdn } = await unknownPush();
    mockAtSmsAccepted([], AT_SANDBOX_HOST, 2);
    await backdate(svc.db, order.id, 901);
    await reconcile();
    expect(await orderStatus(svc, order.id)).toBe('expired');
    const before = await customerGold(svc, order.customer_id);

    await postCallback(svc.url, success('ws_CO_late_unknown', msisdn, 'LATEUNK001'));

    expect(await orderStatus(svc, order.id)).toBe('paid');
    expect(await payment(order.id)).toMatchObject({ matched_by: 'phone_amount_window', settled_by: 'callback', checkout_request_id: 'ws_CO_late_unknown' });
    expect((await customerGold(svc, order.customer_id)).credits_posted - before.credits_posted).toBe(order.grams_ug);
    expect(await svc.db('transfers').where({ pending_id: `buy-${order.id}-late` }).first()).toMatchObject({ status: 'posted' });
  });

  test('when an order never got its push out (its job was lost), then after the limit it fails and the reservation is voided', async () => {
    // What a lost job leaves behind: an order created, or reserved, and never pushed.
    const orders: string[] = [];
    for (const status of ['created', 'reserved'] as const) {
      const msisdn = msisdnOf(nextPhone());
      const customer = await findOrCreateCustomer(svc.db, msisdn as Msisdn);
      const id = (await svc.db.raw('select gen_random_uuid() as id')).rows[0].id as string;
      await svc.db.transaction(async (trx) => {
        await trx('orders').insert({ id, reference: `GLDLOST${status.slice(0, 3).toUpperCase()}${Date.now() % 100}`, kind: 'buy', customer_id: customer.id, msisdn, amount_cents: 50000, price_cents_per_gram: 850000, grams_ug: 58823, status, source_key: `lost:${id}` });
        await trx('stk_payments').insert({ order_id: id, msisdn, amount_kes: 500 });
        if (status === 'reserved') {
          await createPendingTransfer(trx, { id: `buy-${id}`, debitAccountId: await accountIdByCode(trx, 'pool'), creditAccountId: await ensureCustomerAccount(trx, customer.id), amount: 58823, reference: 'lost' });
        }
      });
      orders.push(id);
    }
    mockAtSmsAccepted([], AT_SANDBOX_HOST, 2);
    for (const id of orders) await backdate(svc.db, id, 60);
    expect(await reconcile()).toMatchObject({ unpushed: 0 }); // young: their jobs may still come

    for (const id of orders) await backdate(svc.db, id, 901);
    expect(await reconcile()).toMatchObject({ unpushed: 2 });

    for (const id of orders) expect(await svc.db('orders').where({ id }).first()).toMatchObject({ status: 'failed', failure_code: 'not_pushed' });
    expect(await svc.db('transfers').where({ pending_id: `buy-${orders[1]}` }).first()).toMatchObject({ status: 'voided' });
    await waitFor(async () => (await svc.db('sms_messages').whereIn('dedupe_key', orders.map((id) => `buy-failed-${id}`)).count({ n: '*' }))[0]!.n == 2, 'both told');
  });
});

describe('a push that never left (connection refused)', () => {
  let svc: TestService;
  beforeAll(async () => {
    // Nothing listens on this port: the connection is refused before a byte of the push is sent.
    svc = await startTestService({ MPESA_BASE_URL: `http://127.0.0.1:${await freePort()}`, JOB_ATTEMPTS: '3', JOB_BACKOFF_MS: '20', RECONCILE_INTERVAL_MS: '3600000' });
    await fundPoolGrams(svc.db, 1);
    await withRedis((r) => r.set(`${svc.config.queuePrefix}:daraja:token`, 'cached-token', 'PX', 600_000));
  });
  afterEach(() => expectBooksBalanced(svc.db));
  afterAll(() => svc.close());

  test('when Daraja refuses the connection, then nothing was delivered, so the push is retried up to JOB_ATTEMPTS and the order then fails', async () => {
    mockAtSmsAccepted([]);
    const { sessionId } = await dial(svc.url, ['1', '100', '1'], { phoneNumber: nextPhone() });
    const order = await svc.db('orders').where('source_key', 'like', `ussd:%:${sessionId}`).first();
    await waitFor(async () => (await orderStatus(svc, order.id)) === 'failed', 'the order to fail');
    expect(await svc.db('stk_payments').where({ order_id: order.id }).first()).toMatchObject({ push_attempts: 3, push_outcome: 'not_delivered', last_push_error: expect.stringMatching(/^ECONNREFUSED/) });
    expect(await svc.db('orders').where({ id: order.id }).first()).toMatchObject({ failure_code: 'push_ECONNREFUSED' });
    expect(await svc.db('transfers').where({ pending_id: `buy-${order.id}` }).first()).toMatchObject({ status: 'voided' });
  });
});
