import nock from 'nock';
import { en } from '../../src/i18n/en';
import { OPEN_BUY_STATUSES } from '../../src/orders/order-states';
import { expectBooksBalanced, fundPoolGrams, startTestService, waitFor, withRedis, type TestService } from '../support/harness';
import { newSessionId, postCallback, ussd } from '../support/http';
import { orderStatus } from '../support/flows';
import { msisdnOf } from '../support/phones';
import { mockAtSmsAccepted, mockDarajaToken, mockStkPushAccepted, stkCallbackBody } from '../support/vendors';

const GSM7 = /^[A-Za-z0-9 \n@£$¥èéùìòÇØøÅå_^{}\\[~\]|€ÆæßÉ!"#¤%&'()*+,\-./:;<=>?¡ÄÖÑÜ§¿äöñüà]*$/;

const count = async (svc: TestService, table: string, where: Record<string, unknown> = {}) =>
  Number((await svc.db(table).where(where).count({ n: '*' }))[0]!.n);

/** Confirms a KES 500 buy in one request (a new session carrying every input at once). */
const confirmBuy = (svc: TestService, phoneNumber: string, sessionId = newSessionId()) => ussd(svc.url, { sessionId, text: '1*500*1', phoneNumber });

/** A buy in one USSD request, waited on until M-Pesa accepted its push: the payment is then open. */
async function buyUntilPushed(svc: TestService, phoneNumber: string) {
  mockDarajaToken();
  mockStkPushAccepted([]);
  const sessionId = newSessionId();
  const reply = await confirmBuy(svc, phoneNumber, sessionId);
  if (!reply.text.startsWith('END Request received')) throw new Error(`unexpected reply: ${reply.text}`);
  const order = await svc.db('orders').where('source_key', 'like', `ussd:%:${sessionId}`).first();
  const payment = await waitFor(() => svc.db('stk_payments').where({ order_id: order.id }).whereNotNull('checkout_request_id').first(), 'the STK push');
  return { order, checkoutRequestId: payment.checkout_request_id as string };
}

/** The limits are counted by rate-limiter-flexible in Redis, or in Postgres when there is no Redis. */
describe.each(['redis', 'postgres'] as const)('per-phone limits, counted in %s', (engine) => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ USSD_REQUESTS_PER_MINUTE: '6', STK_PUSHES_PER_HOUR: '2', ...(engine === 'postgres' ? { REDIS_URL: '' } : {}) });
    expect(svc.running.services.backends.kind).toBe(engine);
    await fundPoolGrams(svc.db, 10);
  });
  afterEach(async () => {
    await expectBooksBalanced(svc.db);
    nock.cleanAll();
  });
  afterAll(() => svc.close());

  test('when a phone sends more USSD requests in a minute than USSD_REQUESTS_PER_MINUTE, then it gets a clear END and the request changes nothing', async () => {
    const phone = '+254711000001';
    const sessionId = newSessionId();
    for (const text of ['', '1', '1*500']) expect((await ussd(svc.url, { sessionId, text, phoneNumber: phone })).text).toMatch(/^CON /);
    for (let i = 0; i < 3; i++) {
      expect((await ussd(svc.url, { sessionId: newSessionId(), text: '', phoneNumber: phone })).text).toMatch(/^CON /); // requests 4 to 6: allowed
    }
    const orders = await count(svc, 'orders');

    const limited = await ussd(svc.url, { sessionId, text: '1*500*1', phoneNumber: phone });
    expect(limited).toMatchObject({ status: 200, text: `END ${en.ussd.tooManyRequests}` });
    expect(limited.contentType).toMatch(/^text\/plain/);
    expect(limited.text.length).toBeLessThanOrEqual(160);
    expect(limited.text).toMatch(GSM7);
    // Nothing placed, and the session did not move on: the confirm was never applied.
    expect(await count(svc, 'orders')).toBe(orders);
    expect(await svc.running.services.sessions.get(msisdnOf(phone), sessionId)).toMatchObject({ consumed: 2, state: { screen: 'buy.confirm' } });
    // A brand-new phone is not limited: the count is per phone.
    expect((await ussd(svc.url, { sessionId: newSessionId(), text: '', phoneNumber: '+254711000002' })).text).toMatch(/^CON /);
    // And the count lives in the shared store, not in this process.
    if (engine === 'redis') {
      await withRedis(async (r) => expect(Number(await r.get(`${svc.config.queuePrefix}:limit:ussd-requests:254711000001`))).toBeGreaterThanOrEqual(7));
    } else {
      expect(await svc.db('rate_limits').where({ key: `${svc.config.queuePrefix}:limit:ussd-requests:254711000001` }).first()).toMatchObject({ points: expect.any(Number) });
    }
  });

  test('when a phone already has a payment waiting, then a second buy gets a clear END and nothing is recorded; once it is settled, buying works again', async () => {
    const phone = '+254711000003';
    const first = await buyUntilPushed(svc, phone);
    const orders = await count(svc, 'orders');
    const outbox = await count(svc, 'outbox');

    const second = await confirmBuy(svc, phone);
    expect(second.text).toBe(`END ${en.ussd.paymentPending}`);
    expect(second.text.length).toBeLessThanOrEqual(160);
    expect(second.text).toMatch(GSM7);
    expect(await count(svc, 'orders')).toBe(orders);
    expect(await count(svc, 'outbox')).toBe(outbox);
    expect(await orderStatus(svc, first.order.id)).toBe('stk_sent');

    mockAtSmsAccepted([]);
    await postCallback(svc.url, stkCallbackBody({ checkoutRequestId: first.checkoutRequestId, resultCode: 1032 }));
    expect(await orderStatus(svc, first.order.id)).toBe('failed');
    const again = await buyUntilPushed(svc, phone);
    expect(again.order.id).not.toBe(first.order.id);
    await postCallback(svc.url, stkCallbackBody({ checkoutRequestId: again.checkoutRequestId, resultCode: 1032 }));
  });

  test('when a phone has placed STK_PUSHES_PER_HOUR buys this hour, then the next gets a clear END saying when to retry, and nothing is recorded', async () => {
    const phone = '+254711000005';
    mockAtSmsAccepted([], undefined, 2);
    for (let i = 0; i < 2; i++) {
      const { checkoutRequestId } = await buyUntilPushed(svc, phone);
      await postCallback(svc.url, stkCallbackBody({ checkoutRequestId, resultCode: 1032 }));
    }
    const orders = await count(svc, 'orders');

    const third = await confirmBuy(svc, phone);
    expect(third.text).toMatch(/^END You have made too many payment requests\. Please try again in (\d+) min\. Nothing was charged\.$/);
    const minutes = Number(/in (\d+) min/.exec(third.text)![1]);
    expect(minutes).toBeGreaterThanOrEqual(55);
    expect(minutes).toBeLessThanOrEqual(60);
    expect(third.text.length).toBeLessThanOrEqual(160);
    expect(third.text).toMatch(GSM7);
    expect(await count(svc, 'orders')).toBe(orders);
  });

  test('when a buy is refused because a payment is waiting, then it does not use up one of the hour\'s pushes', async () => {
    const phone = '+254711000006';
    mockAtSmsAccepted([], undefined, 2);
    const first = await buyUntilPushed(svc, phone);
    for (let i = 0; i < 3; i++) expect((await confirmBuy(svc, phone)).text).toBe(`END ${en.ussd.paymentPending}`);
    await postCallback(svc.url, stkCallbackBody({ checkoutRequestId: first.checkoutRequestId, resultCode: 1032 }));
    // Push 2 of 2 this hour: allowed, because the three refusals gave their points back.
    const second = await buyUntilPushed(svc, phone);
    await postCallback(svc.url, stkCallbackBody({ checkoutRequestId: second.checkoutRequestId, resultCode: 1032 }));
  });
});

/** One open payment per phone is a database fact (a partial unique index), whatever races above it. */
describe('one open payment per phone, under a race', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService();
    await fundPoolGrams(svc.db, 10);
  });
  afterEach(async () => {
    await expectBooksBalanced(svc.db);
    nock.cleanAll();
  });
  afterAll(() => svc.close());

  test('when two sessions of one phone confirm at the same moment, then exactly one order is placed', async () => {
    mockDarajaToken();
    mockStkPushAccepted([]);
    mockAtSmsAccepted([]);
    const phone = '+254711000004';
    const replies = await Promise.all(Array.from({ length: 6 }, () => confirmBuy(svc, phone)));
    const texts = replies.map((r) => r.text);
    expect(texts.filter((t) => t.startsWith('END Request received'))).toHaveLength(1);
    expect(texts.filter((t) => t === `END ${en.ussd.paymentPending}`)).toHaveLength(5);
    expect(await count(svc, 'orders', { msisdn: '254711000004' })).toBe(1);
    const payment = await waitFor(() => svc.db('stk_payments').where({ msisdn: '254711000004' }).whereNotNull('checkout_request_id').first(), 'the STK push');
    await postCallback(svc.url, stkCallbackBody({ checkoutRequestId: payment.checkout_request_id, resultCode: 1032 }));
  });

  test('when anything writes a second open buy for a phone, then the database refuses it; closed orders do not count', async () => {
    const customer = (await svc.db('customers').insert({ msisdn: '254711000007' }).returning('id'))[0]!.id;
    const row = (status: string, n: number) => ({
      id: `00000000-0000-4000-8000-00000000000${n}`, reference: `GLDTESTREF0${n}`, kind: 'buy', customer_id: customer, msisdn: '254711000007',
      amount_cents: 50000, price_cents_per_gram: 850000, grams_ug: 58823, status, source_key: `test:${n}`,
    });
    await svc.db('orders').insert([row('failed', 1), row('paid', 2), row('review', 3), row('stk_sent', 4)]);
    for (const [status, n] of [['created', 5], ['reserved', 6], ['stk_requested', 7], ['stk_sent', 8]] as const) {
      await expect(svc.db('orders').insert(row(status, n))).rejects.toMatchObject({ code: '23505', constraint: 'orders_one_open_buy_per_msisdn' });
    }
    await svc.db('orders').where({ msisdn: '254711000007' }).delete();
    // The index and the code's list of open states must not drift apart.
    const { rows } = await svc.db.raw(`SELECT pg_get_indexdef('orders_one_open_buy_per_msisdn'::regclass) AS def`);
    expect([...(rows[0].def as string).matchAll(/'([a-z_]+)'::text/g)].map((m) => m[1]).filter((v) => v !== 'buy').sort()).toEqual([...OPEN_BUY_STATUSES].sort());
  });
});
