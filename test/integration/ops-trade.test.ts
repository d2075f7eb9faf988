import nock from 'nock';
import { expectBooksBalanced, fundPoolGrams, startTestService, waitFor, type TestService } from '../support/harness';
import { ops } from '../support/ops';
import { OPS_TOKEN } from '../support/ops';
import { mockDarajaToken, mockStkPushAccepted, type CapturedStk } from '../support/vendors';

let keyCounter = 0;
const newKey = () => `app-order-${Date.now()}-${++keyCounter}`;

async function buy(svc: TestService, body: unknown, key: string | null = newKey()) {
  return ops(svc, '/trade/buy', { body, ...(key === null ? {} : { headers: { 'idempotency-key': key } }) });
}

describe('POST /trade/buy', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ OPS_API_TOKEN: OPS_TOKEN });
    await fundPoolGrams(svc.db, 100);
  });
  afterAll(() => svc.close());
  afterEach(async () => {
    nock.cleanAll();
    await expectBooksBalanced(svc.db);
  });

  test('when an app buys with an Idempotency-Key, then the order takes the USSD confirm path: order, payment, buy job, reservation and the STK Push', async () => {
    const captured: CapturedStk[] = [];
    mockDarajaToken();
    mockStkPushAccepted(captured);
    const key = newKey();
    const res = await buy(svc, { amountKes: 500, phoneNumber: '0712000001' }, key);
    expect(res.status).toBe(201);
    expect(res.json).toEqual({
      orderId: expect.any(String),
      reference: expect.stringMatching(/^GLD[A-Z2-9]{9}$/),
      status: 'created',
      phone: '2547******01',
      amountKes: 500,
      grams: '0.0588',
      gramsUg: 58_823,
      priceKesPerGram: '8,500',
    });
    const order = await svc.db('orders').where({ id: res.json.orderId }).first();
    expect(order).toMatchObject({ kind: 'buy', msisdn: '254712000001', amount_cents: 50_000, grams_ug: 58_823, source_key: `api:${key}` });
    await waitFor(async () => captured.length === 1, 'the STK Push');
    expect(captured[0]!.body).toMatchObject({ Amount: 500, PhoneNumber: '254712000001', PartyA: '254712000001', AccountReference: order.reference });
    const payment = await waitFor(() => svc.db('stk_payments').where({ order_id: order.id }).whereNotNull('checkout_request_id').first(), 'the accepted push');
    expect(payment.amount_kes).toBe(500);
    expect(await svc.db('transfers').where({ id: `buy-${order.id}` }).first('status', 'amount')).toEqual({ status: 'pending', amount: 58_823 });
  });

  test('when the same request is retried with its Idempotency-Key, then the same order comes back (200, Idempotent-Replayed) and nothing new is recorded', async () => {
    mockDarajaToken();
    mockStkPushAccepted([]);
    const key = newKey();
    const first = await buy(svc, { amountKes: 200, phoneNumber: '254712000002' }, key);
    expect(first.status).toBe(201);
    const again = await buy(svc, { amountKes: 200, phoneNumber: '+254712000002' }, key);
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.json.orderId).toBe(first.json.orderId);
    expect(await svc.db('orders').where({ msisdn: '254712000002' }).count({ n: '*' }).first()).toEqual({ n: 1 });
    expect(await svc.db('outbox').where({ job_id: `buy-${first.json.orderId}` }).count({ n: '*' }).first()).toEqual({ n: 1 });
  });

  test('when an Idempotency-Key is reused for another amount or phone, then 409 and nothing is recorded', async () => {
    mockDarajaToken();
    mockStkPushAccepted([]);
    const key = newKey();
    expect((await buy(svc, { amountKes: 300, phoneNumber: '254712000003' }, key)).status).toBe(201);
    const otherAmount = await buy(svc, { amountKes: 301, phoneNumber: '254712000003' }, key);
    expect(otherAmount.status).toBe(409);
    expect(otherAmount.json.error).toBe('idempotency_key_reused');
    const otherPhone = await buy(svc, { amountKes: 300, phoneNumber: '254712000004' }, key);
    expect(otherPhone.status).toBe(409);
    expect(await svc.db('orders').whereIn('msisdn', ['254712000003', '254712000004']).count({ n: '*' }).first()).toEqual({ n: 1 });
  });

  test.each([
    ['a too short Idempotency-Key', 400, 'invalid_idempotency_key', { amountKes: 100, phoneNumber: '254712000010' }, 'short'],
    ['an Idempotency-Key with a space', 400, 'invalid_idempotency_key', { amountKes: 100, phoneNumber: '254712000010' }, 'app order 12345'],
    ['an amount with decimals', 400, 'invalid_request', { amountKes: 100.5, phoneNumber: '254712000010' }, newKey()],
    ['an amount as a string', 400, 'invalid_request', { amountKes: '100', phoneNumber: '254712000010' }, newKey()],
    ['no phone number', 400, 'invalid_request', { amountKes: 100 }, newKey()],
    ['an amount below BUY_MIN_KES', 422, 'amount_out_of_range', { amountKes: 9, phoneNumber: '254712000010' }, newKey()],
    ['an amount above BUY_MAX_KES', 422, 'amount_out_of_range', { amountKes: 150_001, phoneNumber: '254712000010' }, newKey()],
    ['a landline number', 422, 'invalid_phone', { amountKes: 100, phoneNumber: '0202000000' }, newKey()],
    ['a foreign number', 422, 'invalid_phone', { amountKes: 100, phoneNumber: '+255712345678' }, newKey()],
  ])('when the request has %s, then %s %s and nothing is recorded', async (_what, status, error, body, key) => {
    const res = await buy(svc, body, key as string | null);
    expect(res.status).toBe(status);
    expect(res.json.error).toBe(error);
    expect(await svc.db('orders').where({ msisdn: '254712000010' }).count({ n: '*' }).first()).toEqual({ n: 0 });
  });

  test('when an app buys as the seed documents it, with no Idempotency-Key, then the order is placed; a second request is a new request (refused while the first payment is open)', async () => {
    const captured: CapturedStk[] = [];
    mockDarajaToken();
    mockStkPushAccepted(captured);
    const first = await buy(svc, { amountKes: 150, phoneNumber: '254712000021' }, null);
    expect(first.status).toBe(201);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const order = await svc.db('orders').where({ id: first.json.orderId }).first();
    expect(order.source_key).toMatch(/^api-once:[0-9a-f-]{36}$/);
    await waitFor(async () => captured.length === 1, 'the STK Push');
    const second = await buy(svc, { amountKes: 150, phoneNumber: '254712000021' }, null);
    expect(second.status).toBe(409);
    expect(second.json.error).toBe('payment_pending');
    expect(await svc.db('orders').where({ msisdn: '254712000021' }).count({ n: '*' }).first()).toEqual({ n: 1 });
  });

  test('when the body is not JSON, then 400', async () => {
    const res = await ops(svc, '/trade/buy', { body: '{"amountKes":', headers: { 'idempotency-key': newKey() } });
    expect(res.status).toBe(400);
  });

  test('when the phone already has a payment in progress, then 409 payment_pending and no second order', async () => {
    mockDarajaToken();
    mockStkPushAccepted([]);
    expect((await buy(svc, { amountKes: 100, phoneNumber: '254712000020' })).status).toBe(201);
    const second = await buy(svc, { amountKes: 150, phoneNumber: '254712000020' });
    expect(second.status).toBe(409);
    expect(second.json.error).toBe('payment_pending');
    expect(await svc.db('orders').where({ msisdn: '254712000020' }).count({ n: '*' }).first()).toEqual({ n: 1 });
  });
});

describe('POST /mpesa/test-stk', () => {
  describe('outside production', () => {
    let svc: TestService;
    beforeAll(async () => {
      svc = await startTestService({ OPS_API_TOKEN: OPS_TOKEN });
      await fundPoolGrams(svc.db, 1);
    });
    afterAll(() => svc.close());
    afterEach(() => expectBooksBalanced(svc.db));

    test('when an operator sends a KES 1 test push, then it goes through the normal job path to Daraja', async () => {
      const captured: CapturedStk[] = [];
      mockDarajaToken();
      mockStkPushAccepted(captured);
      const res = await ops(svc, '/mpesa/test-stk', { body: { phoneNumber: '254708374149', amount: 1 } });
      expect(res.status).toBe(202);
      expect(res.json).toMatchObject({ orderId: expect.any(String), status: 'created', amountKes: 1, phone: '2547******49', gramsUg: 117 });
      expect(await svc.db('orders').where({ id: res.json.orderId }).first('source_key')).toEqual({ source_key: expect.stringMatching(/^test-stk:/) });
      await waitFor(async () => captured.length === 1, 'the test push');
      expect(captured[0]!.body).toMatchObject({ Amount: 1, PhoneNumber: '254708374149' });
    });

    test('when the body is wrong, then 400 and nothing is recorded', async () => {
      const before = await svc.db('orders').count({ n: '*' }).first();
      expect((await ops(svc, '/mpesa/test-stk', { body: { phoneNumber: '254708374149', amount: 0 } })).status).toBe(400);
      expect((await ops(svc, '/mpesa/test-stk', { body: { phoneNumber: '254708374149' } })).status).toBe(400);
      expect(await svc.db('orders').count({ n: '*' }).first()).toEqual(before);
    });
  });

  const PRODUCTION = {
    OPS_API_TOKEN: OPS_TOKEN,
    MPESA_ENVIRONMENT: 'production',
    AT_USERNAME: 'goldwallet',
    // No worker: the allowed case records the order; nothing may reach the real Daraja from a test.
    ROLE: 'web',
  };

  test('when the service runs in production, then a test push is refused (403) and nothing is recorded', async () => {
    const svc = await startTestService(PRODUCTION);
    try {
      const res = await ops(svc, '/mpesa/test-stk', { body: { phoneNumber: '254708374149', amount: 1 } });
      expect(res.status).toBe(403);
      expect(res.json.error).toBe('test_stk_disabled');
      expect(await svc.db('orders').count({ n: '*' }).first()).toEqual({ n: 0 });
    } finally {
      await svc.close();
    }
  });

  test('when production allows it with OPS_ALLOW_TEST_STK=true, then the test push is recorded', async () => {
    const svc = await startTestService({ ...PRODUCTION, OPS_ALLOW_TEST_STK: 'true' });
    try {
      const res = await ops(svc, '/mpesa/test-stk', { body: { phoneNumber: '254708374149', amount: 1 } });
      expect(res.status).toBe(202);
      expect(await svc.db('outbox').where({ job_id: `buy-${res.json.orderId}` }).count({ n: '*' }).first()).toEqual({ n: 1 });
    } finally {
      await svc.close();
    }
  });
});
