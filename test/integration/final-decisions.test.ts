import nock from 'nock';
import { resolvePendingTransfer } from '../../src/ledger/ledger';
import { settleStkPayment } from '../../src/payments/buy/settle-stk-payment';
import { expectBooksBalanced, fundPoolGrams, startTestService, type TestService } from '../support/harness';
import { postCallback } from '../support/http';
import { OPS_TOKEN, ops, pushedBuy } from '../support/ops';
import { stkCallbackBody } from '../support/vendors';

/**
 * An operator's decision is final, and two M-Pesa answers that contradict each other are a person's to
 * look at: neither may move gold behind an operator's back.
 */

let phoneCounter = 0;
const nextPhone = () => `2547125000${String(++phoneCounter).padStart(2, '0')}`;
let receiptCounter = 0;
const nextReceipt = () => `RFD${Date.now().toString(36).toUpperCase()}${++receiptCounter}`;

describe('final decisions', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ OPS_API_TOKEN: OPS_TOKEN });
    await fundPoolGrams(svc.db, 10);
  });
  afterAll(() => svc.close());
  afterEach(async () => {
    nock.cleanAll();
    await expectBooksBalanced(svc.db);
  });

  const customerPosted = async (phone: string) =>
    Number((await svc.db('accounts').join('customers', 'customers.id', 'accounts.customer_id').where('customers.msisdn', phone).first('accounts.credits_posted'))?.credits_posted ?? 0);
  const alertsOf = (orderId: string, kind: string) => svc.db('ops_alerts').where({ order_id: orderId, kind });

  /** A buy whose success callback came with the wrong amount: credited nothing, waiting in review. */
  async function orderInReview() {
    const phone = nextPhone();
    const { orderId, checkoutRequestId } = await pushedBuy(svc, phone);
    expect((await postCallback(svc.url, stkCallbackBody({ checkoutRequestId, resultCode: 0, amount: 5, receipt: nextReceipt(), phone }))).status).toBe(200);
    expect(await svc.db('orders').where({ id: orderId }).first('status')).toEqual({ status: 'review' });
    return { orderId, checkoutRequestId, phone };
  }

  test.each([
    ['refund_note', 'refunded'],
    ['close', 'closed'],
  ])('when an operator resolved a review order with %s and M-Pesa then repeats the success callback (also 5 copies at once), then nothing is credited, the order stays %s, and one alert per receipt is raised', async (action, status) => {
    const { orderId, checkoutRequestId, phone } = await orderInReview();
    expect((await ops(svc, `/ops/orders/${orderId}/resolve`, { body: { action, note: 'money returned by reversal', operator: 'ops-final' } })).status).toBe(200);
    expect(await svc.db('orders').where({ id: orderId }).first('status')).toEqual({ status });

    const receipt = nextReceipt();
    const good = stkCallbackBody({ checkoutRequestId, resultCode: 0, amount: 500, receipt, phone });
    const answers = await Promise.all([1, 2, 3, 4, 5].map(() => postCallback(svc.url, good)));
    for (const a of answers) expect(a.status).toBe(200);
    expect((await postCallback(svc.url, good)).status).toBe(200);

    expect(await svc.db('orders').where({ id: orderId }).first('status')).toEqual({ status });
    expect(await customerPosted(phone)).toBe(0);
    expect(await svc.db('transfers').where('id', 'like', `buy-${orderId}%`).where({ status: 'posted' })).toEqual([]);
    const raised = await alertsOf(orderId, 'payment_after_resolution');
    expect(raised).toHaveLength(1);
    expect(raised[0]).toMatchObject({ severity: 'error', resolved_at: null });
    expect(raised[0].details).toMatchObject({ receipt, status });
    // Another receipt for the same order is another event: its own alert.
    await postCallback(svc.url, stkCallbackBody({ checkoutRequestId, resultCode: 0, amount: 500, receipt: nextReceipt(), phone }));
    expect(await alertsOf(orderId, 'payment_after_resolution')).toHaveLength(2);
    expect(await customerPosted(phone)).toBe(0);
  });

  test('when an operator closed an order and an STK Query then says paid, then nothing moves and one alert is raised', async () => {
    const { orderId, phone } = await orderInReview();
    await ops(svc, `/ops/orders/${orderId}/resolve`, { body: { action: 'close', note: 'never paid', operator: 'ops-final' } });
    const payment = await svc.db('stk_payments').where({ order_id: orderId }).first();
    const query = { source: 'query' as const, outcome: { kind: 'paid' as const, resultDesc: 'The service request is processed successfully.', receipt: null } };
    expect(await settleStkPayment(svc.running.services, payment.id, query)).toBe('after_resolution');
    expect(await settleStkPayment(svc.running.services, payment.id, query)).toBe('after_resolution');
    expect(await svc.db('orders').where({ id: orderId }).first('status')).toEqual({ status: 'closed' });
    expect(await customerPosted(phone)).toBe(0);
    expect(await alertsOf(orderId, 'payment_after_resolution')).toHaveLength(1);
  });

  test('when a failure callback failed the order and a later STK Query says paid, then a conflicting_results alert is raised and nothing is credited', async () => {
    const phone = nextPhone();
    const { orderId, checkoutRequestId } = await pushedBuy(svc, phone);
    expect((await postCallback(svc.url, stkCallbackBody({ checkoutRequestId, resultCode: 1032, resultDesc: 'Request cancelled by user' }))).status).toBe(200);
    expect(await svc.db('orders').where({ id: orderId }).first('status')).toEqual({ status: 'failed' });
    const payment = await svc.db('stk_payments').where({ order_id: orderId }).first();

    const outcome = await settleStkPayment(svc.running.services, payment.id, {
      source: 'query',
      outcome: { kind: 'paid', resultDesc: 'The service request is processed successfully.', receipt: null },
    });

    expect(outcome).toBe('conflict');
    expect(await svc.db('orders').where({ id: orderId }).first('status')).toEqual({ status: 'failed' });
    expect(await customerPosted(phone)).toBe(0);
    const raised = await alertsOf(orderId, 'conflicting_results');
    expect(raised).toHaveLength(1);
    expect(raised[0].message).toMatch(/the callback said the payment failed, a later STK Query says it was paid/);
    expect(await svc.db('stk_payments').where({ id: payment.id }).first('settled_by', 'result_code')).toEqual({ settled_by: 'callback', result_code: 1032 });
  });

  test('when the ledger answers that the reservation was already released as a success callback pays the order, then that answer is not ignored: the gold comes from a fresh reservation', async () => {
    const phone = nextPhone();
    const { orderId, checkoutRequestId } = await pushedBuy(svc, phone);
    // Never expected: something released the reservation while M-Pesa still had the payment.
    await svc.db.transaction((trx) => resolvePendingTransfer(trx, `buy-${orderId}`, 'voided'));
    const order = await svc.db('orders').where({ id: orderId }).first();

    expect((await postCallback(svc.url, stkCallbackBody({ checkoutRequestId, resultCode: 0, amount: 500, receipt: nextReceipt(), phone }))).status).toBe(200);

    expect(await svc.db('orders').where({ id: orderId }).first('status')).toEqual({ status: 'paid' });
    expect(await svc.db('transfers').where({ id: `buy-${orderId}-late/posted` }).first('amount')).toEqual({ amount: order.grams_ug });
    expect(await customerPosted(phone)).toBe(order.grams_ug);
  });
});
