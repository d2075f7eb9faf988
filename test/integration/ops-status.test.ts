import nock from 'nock';
import { DARAJA_HOST, expectBooksBalanced, fundPoolGrams, startTestService, type TestService } from '../support/harness';
import { postCallback } from '../support/http';
import { OPS_TOKEN, ops, pushedBuy } from '../support/ops';
import { stkCallbackBody } from '../support/vendors';


function mockStkQuery(answer: { status: number; body: unknown }, seen: unknown[] = []) {
  return nock(DARAJA_HOST)
    .post('/mpesa/stkpushquery/v1/query')
    .reply(function (_uri, body) {
      seen.push(body);
      return [answer.status, answer.body];
    });
}

describe('GET /mpesa/status/:checkoutRequestId', () => {
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

  test('when a payment was settled and its callback came twice, then the record shows the order, the payment, both callbacks and the posted reservation, with the phone masked', async () => {
    const { orderId, checkoutRequestId } = await pushedBuy(svc, '254712300001');
    const body = stkCallbackBody({ checkoutRequestId, resultCode: 0, amount: 500, receipt: 'TST0000001', phone: '254712300001' });
    expect((await postCallback(svc.url, body)).status).toBe(200);
    expect((await postCallback(svc.url, body)).status).toBe(200);

    const res = await ops(svc, `/mpesa/status/${checkoutRequestId}`);
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({
      checkoutRequestId,
      order: { id: orderId, status: 'paid', phone: '2547******01', amountKes: '500', grams: '0.0588', gramsUg: 58_823, kind: 'buy' },
      payment: { resultCode: 0, receipt: 'TST0000001', pushAttempts: 1 },
      reservation: 'posted',
      callbacks: [
        { outcome: 'settled', resultCode: 0, receivedAt: expect.any(String) },
        { outcome: 'duplicate', resultCode: 0, receivedAt: expect.any(String) },
      ],
      resolutions: [],
    });
    expect(res.text).not.toContain('254712300001');
  });

  test('when the CheckoutRequestID is unknown, then 404; when only orphan callbacks name it, then they are shown', async () => {
    expect((await ops(svc, '/mpesa/status/ws_CO_never_seen')).status).toBe(404);
    await postCallback(svc.url, stkCallbackBody({ checkoutRequestId: 'ws_CO_orphan_1', resultCode: 1032 }));
    const res = await ops(svc, '/mpesa/status/ws_CO_orphan_1');
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ order: null, payment: null, callbacks: [{ outcome: 'orphan', resultCode: 1032 }] });
  });

  test('when the id is malformed, then 400', async () => {
    expect((await ops(svc, `/mpesa/status/${encodeURIComponent('ws CO;drop')}`)).status).toBe(400);
  });

  test('when live=1, then a worker runs the STK Query and its answer is shown beside the record, without changing the order', async () => {
    const { checkoutRequestId } = await pushedBuy(svc, '254712300002');
    const seen: Array<Record<string, unknown>> = [];
    mockStkQuery(
      {
        status: 200,
        body: { ResponseCode: '0', ResponseDescription: 'The service request has been accepted successsfully', MerchantRequestID: 'mr-1', CheckoutRequestID: checkoutRequestId, ResultCode: '1032', ResultDesc: 'Request cancelled by user' },
      },
      seen,
    );
    const res = await ops(svc, `/mpesa/status/${checkoutRequestId}?live=1`);
    expect(res.status).toBe(200);
    expect(res.json.live).toEqual({ state: 'final', resultCode: 1032, resultCodeText: '1032', resultDesc: 'Request cancelled by user' });
    expect(res.json.order.status).toBe('stk_sent');
    expect(seen).toEqual([expect.objectContaining({ BusinessShortCode: '174379', CheckoutRequestID: checkoutRequestId })]);
    // Shown, not applied: settling from a query is reconciliation's job.
    expect(await svc.db('orders').where({ id: res.json.order.id }).first('status')).toEqual({ status: 'stk_sent' });
  });

  test('when live=1 and Daraja says the payment is still being processed, then live.state is pending', async () => {
    const { checkoutRequestId } = await pushedBuy(svc, '254712300003');
    mockStkQuery({ status: 500, body: { requestId: 'r-1', errorCode: '500.001.1001', errorMessage: 'The transaction is being processed' } });
    const res = await ops(svc, `/mpesa/status/${checkoutRequestId}?live=1`);
    expect(res.status).toBe(200);
    expect(res.json.live).toEqual({ state: 'pending' });
  });

  test('when live=1 and Daraja fails, then 502 with the failure beside the record', async () => {
    const { checkoutRequestId } = await pushedBuy(svc, '254712300004');
    mockStkQuery({ status: 400, body: { requestId: 'r-2', errorCode: '400.002.02', errorMessage: 'Bad Request - Invalid CheckoutRequestID' } });
    const res = await ops(svc, `/mpesa/status/${checkoutRequestId}?live=1`);
    expect(res.status).toBe(502);
    expect(res.json.live).toMatchObject({ state: 'error', code: '400.002.02', kind: 'permanent' });
    expect(res.json.order.status).toBe('stk_sent');
  });
});

describe('GET /mpesa/status/:id?live=1 without a worker', () => {
  test('when no worker answers within OPS_QUERY_TIMEOUT_MS, then 504 with our record, and Daraja is not called by the web process', async () => {
    const svc = await startTestService({ OPS_API_TOKEN: OPS_TOKEN, ROLE: 'web', OPS_QUERY_TIMEOUT_MS: '300' });
    try {
      const scope = mockStkQuery({ status: 200, body: {} });
      const res = await ops(svc, '/mpesa/status/ws_CO_no_worker?live=1');
      expect(res.status).toBe(504);
      expect(res.json).toMatchObject({ error: 'query_timeout', record: null });
      expect(scope.isDone()).toBe(false);
      const waiting = await svc.running.services.queues['ops-query'].getJobCounts('waiting');
      expect(waiting.waiting).toBe(1);
    } finally {
      nock.cleanAll();
      await svc.close();
    }
  });
});

describe('the ops surface on the PostgreSQL queue backend (no Redis)', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ OPS_API_TOKEN: OPS_TOKEN, REDIS_URL: '' });
    await fundPoolGrams(svc.db, 10);
  });
  afterAll(() => svc.close());
  afterEach(() => nock.cleanAll());

  test('when live=1, then the query job runs and its answer comes back through the PostgreSQL queue events', async () => {
    expect(svc.running.services.backends.kind).toBe('postgres');
    const { checkoutRequestId } = await pushedBuy(svc, '254712300005');
    mockStkQuery({ status: 200, body: { ResponseCode: '0', ResponseDescription: 'ok', CheckoutRequestID: checkoutRequestId, ResultCode: 0, ResultDesc: 'The service request is processed successfully.' } });
    const res = await ops(svc, `/mpesa/status/${checkoutRequestId}?live=1`);
    expect(res.status).toBe(200);
    expect(res.json.live).toMatchObject({ state: 'final', resultCode: 0 });
    await expectBooksBalanced(svc.db);
  });

  test('when the queue dashboard is opened, then Bull Board lists the queues from PostgreSQL', async () => {
    const res = await ops(svc, '/ops/queues/api/queues');
    expect(res.status).toBe(200);
    const buy = (res.json.queues as Array<{ name: string; counts: Record<string, number> }>).find((q) => q.name === 'buy-gold');
    expect(buy).toBeDefined();
    expect(buy!.counts.completed).toBeGreaterThanOrEqual(1);
  });
});
