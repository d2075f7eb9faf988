import nock from 'nock';
import { expectBooksBalanced, fundPoolGrams, startTestService, waitFor, type TestService } from '../support/harness';
import { postCallback } from '../support/http';
import { OPS_TOKEN, pushedBuy } from '../support/ops';

/**
 * Callbacks as Safaricom really sent them (test/fixtures/realworld/stk-callbacks.json, a copy of
 * shared/fixtures/realworld), applied to a real pushed order.
 */
const FIXTURES: Array<{ note: string; payload: unknown }> = require('../fixtures/realworld/stk-callbacks.json');
const fixture = (needle: string) => {
  const f = FIXTURES.find((x) => x.note.includes(needle));
  if (!f) throw new Error(`no fixture noted ${needle}`);
  return f.payload as { Body: { stkCallback: Record<string, unknown> } };
};

describe('real-world STK callbacks', () => {
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

  test('when the ResultCode is the alphanumeric "SFC_IC0003" (a misconfigured till), then it is a failure: 200, reservation voided, the saver told, the raw payload kept', async () => {
    const { orderId, checkoutRequestId } = await pushedBuy(svc, '254712600001');
    const body = structuredClone(fixture('SFC_IC0003'));
    body.Body.stkCallback.CheckoutRequestID = checkoutRequestId;

    const res = await postCallback(svc.url, body);

    expect(res.status).toBe(200);
    expect(res.json).toEqual({ ResultCode: 0, ResultDesc: 'Accepted' });
    expect(await svc.db('orders').where({ id: orderId }).first('status', 'failure_code')).toEqual({ status: 'failed', failure_code: 'stk_-1' });
    expect(await svc.db('transfers').where({ pending_id: `buy-${orderId}` }).first('status')).toEqual({ status: 'voided' });
    expect(await svc.db('stk_payments').where({ order_id: orderId }).first('result_code', 'result_desc', 'settled_by')).toEqual({
      result_code: -1,
      result_desc: 'SFC_IC0003: The operator does not exist.',
      settled_by: 'callback',
    });
    const kept = await svc.db('mpesa_callbacks').where({ checkout_request_id: checkoutRequestId }).first('payload', 'outcome');
    expect(kept.outcome).toBe('failed');
    expect(kept.payload.Body.stkCallback.ResultCode).toBe('SFC_IC0003');
    const sms = await waitFor(() => svc.db('sms_messages').where({ msisdn: '254712600001', purpose: 'buy_failed' }).first(), 'the failure SMS');
    expect(sms.body).toMatch(/M-Pesa could not complete the payment/);
  });
});
