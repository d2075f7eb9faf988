import nock from 'nock';
import { CALLBACK_PATH, expectBooksBalanced, fundPoolGrams, startTestService, waitFor, type TestService } from '../support/harness';
import { postCallback } from '../support/http';
import { buyUntilPushed, customerGold, orderStatus, poolAccount } from '../support/flows';
import { mockAtSmsAccepted, stkCallbackBody, type CapturedSms } from '../support/vendors';

describe('the STK callback', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService();
    await fundPoolGrams(svc.db, 100);
  });
  afterEach(async () => {
    await expectBooksBalanced(svc.db);
    nock.cleanAll();
  });
  afterAll(() => svc.close());

  const success = (checkoutRequestId: string, over: Partial<Parameters<typeof stkCallbackBody>[0]> = {}) =>
    stkCallbackBody({ checkoutRequestId, resultCode: 0, amount: 500, receipt: `R${Date.now().toString(36).toUpperCase()}${Math.floor(Math.random() * 1000)}`, phone: 254712345678, ...over });

  test.each([
    [1032, /you cancelled the M-Pesa request/],
    [1, /not enough money in M-Pesa/],
    [2001, /the M-Pesa PIN was wrong/],
    [1037, /not answered in time/],
    [1025, /M-Pesa could not complete the payment/],
  ])('when M-Pesa reports ResultCode %d, then the reservation is voided, the order fails and the SMS says why', async (code, reason) => {
    const sms: CapturedSms[] = [];
    const { order, checkoutRequestId } = await buyUntilPushed(svc);
    const poolBefore = await poolAccount(svc);
    expect(poolBefore.debits_pending).toBeGreaterThanOrEqual(order.grams_ug);
    mockAtSmsAccepted(sms);

    const ack = await postCallback(svc.url, stkCallbackBody({ checkoutRequestId, resultCode: code, resultDesc: `desc ${code}` }));
    expect(ack).toMatchObject({ status: 200, json: { ResultCode: 0, ResultDesc: 'Accepted' } });

    expect(await orderStatus(svc, order.id)).toBe('failed');
    expect(await svc.db('orders').where({ id: order.id }).first()).toMatchObject({ failure_code: `stk_${code}`, failure_reason: `desc ${code}` });
    expect(await svc.db('transfers').where({ pending_id: `buy-${order.id}` }).first()).toMatchObject({ status: 'voided', amount: order.grams_ug });
    expect((await poolAccount(svc)).debits_pending).toBe(poolBefore.debits_pending - order.grams_ug);
    expect(await customerGold(svc, order.customer_id)).toMatchObject({ credits_pending: 0 });
    expect(await svc.db('stk_payments').where({ order_id: order.id }).first()).toMatchObject({ result_code: code, result_desc: `desc ${code}`, mpesa_receipt: null });

    await waitFor(() => Promise.resolve(sms.length === 1), 'the failure SMS');
    expect(sms[0]!.form.get('message')).toMatch(reason);
    expect(sms[0]!.form.get('message')).toContain('KES 500');
    expect(sms[0]!.form.get('message')!.length).toBeLessThanOrEqual(160);
  });

  test('when 5 identical success callbacks arrive at once, then the gold is credited exactly once', async () => {
    const sms: CapturedSms[] = [];
    const { order, checkoutRequestId } = await buyUntilPushed(svc);
    mockAtSmsAccepted(sms, undefined, 5);
    const before = await customerGold(svc, order.customer_id);
    const body = success(checkoutRequestId);

    const acks = await Promise.all(Array.from({ length: 5 }, () => postCallback(svc.url, body)));
    for (const ack of acks) expect(ack).toMatchObject({ status: 200, json: { ResultCode: 0 } });

    const after = await customerGold(svc, order.customer_id);
    expect(after.credits_posted - before.credits_posted).toBe(order.grams_ug);
    expect(await svc.db('transfers').where({ pending_id: `buy-${order.id}` }).count({ n: '*' })).toEqual([{ n: 1 }]);
    const outcomes = (await svc.db('mpesa_callbacks').where({ checkout_request_id: checkoutRequestId }).select('outcome')).map((r) => r.outcome).sort();
    expect(outcomes).toEqual(['duplicate', 'duplicate', 'duplicate', 'duplicate', 'settled']);
    await waitFor(() => svc.db('sms_messages').where({ dedupe_key: `buy-receipt-${order.id}`, status: 'sent' }).first(), 'the receipt');
    expect(await svc.db('sms_messages').where({ dedupe_key: `buy-receipt-${order.id}` }).count({ n: '*' })).toEqual([{ n: 1 }]);
    expect(sms).toHaveLength(1);
  });

  test('when a failure callback follows a success, then nothing changes', async () => {
    const { order, checkoutRequestId } = await buyUntilPushed(svc);
    mockAtSmsAccepted([]);
    await postCallback(svc.url, success(checkoutRequestId));
    const credited = await customerGold(svc, order.customer_id);
    const late = await postCallback(svc.url, stkCallbackBody({ checkoutRequestId, resultCode: 1032 }));
    expect(late.status).toBe(200);
    expect(await orderStatus(svc, order.id)).toBe('paid');
    expect(await customerGold(svc, order.customer_id)).toEqual(credited);
  });

  test('when the CheckoutRequestID is unknown, then it is acknowledged, recorded as an orphan and nothing is credited', async () => {
    const pool = await poolAccount(svc);
    const ack = await postCallback(svc.url, success('ws_CO_unknown_123'));
    expect(ack).toMatchObject({ status: 200, json: { ResultCode: 0 } });
    expect(await svc.db('mpesa_callbacks').where({ checkout_request_id: 'ws_CO_unknown_123' }).first()).toMatchObject({ outcome: 'orphan' });
    expect(await poolAccount(svc)).toEqual(pool);
  });

  test.each([
    ['the amount differs', { amount: 5 }],
    ['the phone differs', { phone: 254799999999 }],
    ['the receipt is missing', { receipt: undefined }],
  ])('when %s, then nothing is credited and the order goes to review', async (_what, over) => {
    const { order, checkoutRequestId } = await buyUntilPushed(svc);
    const before = await customerGold(svc, order.customer_id);
    const ack = await postCallback(svc.url, success(checkoutRequestId, over));
    expect(ack.status).toBe(200);
    expect(await orderStatus(svc, order.id)).toBe('review');
    expect(await customerGold(svc, order.customer_id)).toEqual(before);
    expect(await svc.db('mpesa_callbacks').where({ checkout_request_id: checkoutRequestId }).first()).toMatchObject({ outcome: 'mismatch' });
    // The reservation is held for the operator, not silently released or posted.
    expect(await svc.db('transfers').where({ pending_id: `buy-${order.id}` }).first()).toBeUndefined();
  });

  test('when a receipt number was already used by another payment, then the second is not credited', async () => {
    mockAtSmsAccepted([]);
    const first = await buyUntilPushed(svc);
    await postCallback(svc.url, success(first.checkoutRequestId, { receipt: 'SAMERCPT01' }));
    const second = await buyUntilPushed(svc);
    await postCallback(svc.url, success(second.checkoutRequestId, { receipt: 'SAMERCPT01' }));
    expect(await orderStatus(svc, first.order.id)).toBe('paid');
    expect(await orderStatus(svc, second.order.id)).toBe('review');
  });

  test.each([
    ['not JSON', '{"Body":'],
    ['an empty object', {}],
    ['a missing CheckoutRequestID', { Body: { stkCallback: { MerchantRequestID: 'x', ResultCode: 0, ResultDesc: 'ok' } } }],
    // An alphanumeric code ("SFC_IC0003") is a real failure result (stk-realworld-callbacks.test.ts); these are not codes at all.
    ['a ResultCode that is no code', { Body: { stkCallback: { MerchantRequestID: 'x', CheckoutRequestID: 'y', ResultCode: 'not a code!', ResultDesc: 'ok' } } }],
    ['a ResultCode that is an object', { Body: { stkCallback: { MerchantRequestID: 'x', CheckoutRequestID: 'y', ResultCode: { code: 0 }, ResultDesc: 'ok' } } }],
  ])('when the body is %s, then it answers 400 and records nothing', async (_what, body) => {
    const before = await svc.db('mpesa_callbacks').count({ n: '*' });
    const res = await postCallback(svc.url, body);
    expect(res.status).toBe(400);
    expect(await svc.db('mpesa_callbacks').count({ n: '*' })).toEqual(before);
  });

  test('when the secret path segment is wrong or extended, then it answers 404 and changes nothing', async () => {
    const { order, checkoutRequestId } = await buyUntilPushed(svc);
    const body = success(checkoutRequestId);
    for (const path of ['/mpesa/callback/wrong-secret', `${CALLBACK_PATH}/extra`, '/mpesa/callback', `${CALLBACK_PATH.toUpperCase()}`]) {
      expect((await postCallback(svc.url, body, path)).status).toBe(404);
    }
    expect(await orderStatus(svc, order.id)).toBe('stk_sent');
    await postCallback(svc.url, stkCallbackBody({ checkoutRequestId, resultCode: 1032 }));
  });
});
