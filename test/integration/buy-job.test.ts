import nock from 'nock';
import { runBuyOrder } from '../../src/payments/buy/run-buy-order';
import { DARAJA_HOST, expectBooksBalanced, withRedis, fundPoolGrams, startTestService, waitFor, type TestService } from '../support/harness';
import { dial } from '../support/http';
import { orderStatus, poolAccount } from '../support/flows';
import { msisdnOf, nextPhone } from '../support/phones';
import { mockAtSmsAccepted, mockDarajaToken, mockStkPushAccepted, type CapturedSms, type CapturedStk } from '../support/vendors';

describe('the buy job', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ JOB_ATTEMPTS: '5', JOB_BACKOFF_MS: '30', MPESA_HTTP_TIMEOUT_MS: '300' });
    await fundPoolGrams(svc.db, 1);
  });
  afterEach(async () => {
    await expectBooksBalanced(svc.db);
    nock.cleanAll();
    await withRedis((r) => r.del(`${svc.config.queuePrefix}:daraja:token`));
  });
  afterAll(() => svc.close());

  // One open buy per phone is a database rule: every order here gets its own phone.
  async function confirmBuy(amountKes = 100, phone = nextPhone()) {
    const { sessionId } = await dial(svc.url, ['1', String(amountKes), '1'], { phoneNumber: phone });
    return svc.db('orders').where('source_key', 'like', `ussd:%:${sessionId}`).first();
  }
  const settled = (id: string) => waitFor(async () => ['stk_sent', 'failed'].includes(await orderStatus(svc, id)) && orderStatus(svc, id), 'the job to finish');
  const pushOutcome = (id: string, outcome: string) =>
    waitFor(() => svc.db('stk_payments').where({ order_id: id, push_outcome: outcome }).first(), `push outcome ${outcome}`);

  test('when Daraja refuses with its own envelope (spike arrest, "unable to lock subscriber"), then the push is retried with backoff and succeeds once', async () => {
    const stk: CapturedStk[] = [];
    mockDarajaToken();
    const scope = nock(DARAJA_HOST)
      .post('/mpesa/stkpush/v1/processrequest').reply(500, { requestId: 'r', errorCode: '500.003.02', errorMessage: 'Spike arrest violation' })
      .post('/mpesa/stkpush/v1/processrequest').reply(500, { requestId: 'r', errorCode: '500.001.1001', errorMessage: 'Unable to lock subscriber' });
    mockStkPushAccepted(stk);
    const order = await confirmBuy();
    expect(await settled(order.id)).toBe('stk_sent');
    expect(scope.isDone()).toBe(true);
    expect(stk).toHaveLength(1);
    expect(await svc.db('stk_payments').where({ order_id: order.id }).first()).toMatchObject({ push_attempts: 3, push_outcome: 'accepted', last_push_error: null });
  });

  // Until issue 5 these were retried like a 5xx. STK Push has no idempotency key: if Daraja got the
  // request, a second push prompts (and may charge) the customer twice. Now: no second push, wait.
  test.each([
    ['the connection is reset after sending', (scope: nock.Interceptor) => scope.replyWithError('socket hang up')],
    ['Daraja does not answer within MPESA_HTTP_TIMEOUT_MS', (scope: nock.Interceptor) => scope.delay(1000).reply(200, {})],
    ['a gateway answers 504', (scope: nock.Interceptor) => scope.reply(504, '<html>Gateway Timeout</html>')],
    // A gateway's error page is not Daraja refusing: the gateway may have passed the push on first.
    ['a gateway answers a 503 HTML page', (scope: nock.Interceptor) => scope.reply(503, '<html>Service Unavailable</html>')],
    ['a gateway answers 502 in plain text', (scope: nock.Interceptor) => scope.reply(502, 'Bad Gateway')],
    // Not followed (a 307 would re-send the push elsewhere), and whatever redirected may have passed it on first.
    ['something in between answers a redirect', (scope: nock.Interceptor) => scope.reply(303, '', { Location: 'https://elsewhere.example.com/' })],
  ])('when %s, then the outcome is unknown: no second push, the order waits for its callback', async (_what, answer) => {
    const stk: CapturedStk[] = [];
    mockDarajaToken();
    answer(nock(DARAJA_HOST).post('/mpesa/stkpush/v1/processrequest'));
    const retry = mockStkPushAccepted(stk);
    const order = await confirmBuy();
    const payment = await pushOutcome(order.id, 'unknown');
    expect(payment).toMatchObject({ push_attempts: 1, checkout_request_id: null });
    expect(payment.push_started_at).not.toBeNull();
    // Whoever runs the job again (a retry, a stalled job taken over) must not push either.
    await runBuyOrder(svc.running.services, order.id, false);
    await runBuyOrder(svc.running.services, order.id, true);
    expect(retry.isDone()).toBe(false);
    expect(stk).toHaveLength(0);
    expect(await orderStatus(svc, order.id)).toBe('stk_requested');
    expect(await svc.db('stk_payments').where({ order_id: order.id }).first()).toMatchObject({ push_attempts: 1, push_outcome: 'unknown' });
    // The reservation stays held: the callback (matched by phone and amount) or the expiry settles it.
    expect(await svc.db('transfers').where({ id: `buy-${order.id}`, status: 'pending' }).first()).toBeDefined();
    expect(await svc.db('transfers').where({ pending_id: `buy-${order.id}` }).first()).toBeUndefined();
  });

  test('when a process died during the push (the attempt is still in flight), then a new run does not push again', async () => {
    const stk: CapturedStk[] = [];
    mockDarajaToken();
    mockStkPushAccepted(stk);
    const order = await confirmBuy();
    expect(await settled(order.id)).toBe('stk_sent');
    // Rewind to what a SIGKILL between "attempt recorded" and "answer stored" leaves behind.
    await svc.db('stk_payments').where({ order_id: order.id }).update({ push_outcome: 'in_flight', checkout_request_id: null, merchant_request_id: null });
    await svc.db('orders').where({ id: order.id }).update({ status: 'stk_requested' });
    const second = mockStkPushAccepted(stk);
    await runBuyOrder(svc.running.services, order.id, false);
    expect(second.isDone()).toBe(false);
    expect(stk).toHaveLength(1);
    expect(await orderStatus(svc, order.id)).toBe('stk_requested');
  });

  test('when Daraja answers 400 invalid field, then the order fails for good, the reservation is voided and the user is told', async () => {
    const sms: CapturedSms[] = [];
    mockDarajaToken();
    const push = nock(DARAJA_HOST).post('/mpesa/stkpush/v1/processrequest').reply(400, { requestId: 'r', errorCode: '400.002.02', errorMessage: 'Bad Request - Invalid PhoneNumber' });
    mockAtSmsAccepted(sms);
    const pool = await poolAccount(svc);
    const order = await confirmBuy();
    expect(await settled(order.id)).toBe('failed');
    expect(push.isDone()).toBe(true);
    expect(await svc.db('orders').where({ id: order.id }).first()).toMatchObject({ failure_code: 'push_400.002.02' });
    expect(await svc.db('transfers').where({ pending_id: `buy-${order.id}` }).first()).toMatchObject({ status: 'voided' });
    expect((await poolAccount(svc)).debits_pending).toBe(pool.debits_pending);
    expect(await svc.db('stk_payments').where({ order_id: order.id }).first()).toMatchObject({ push_attempts: 1 });
    await waitFor(() => Promise.resolve(sms.length === 1), 'the failure SMS');
    expect(sms[0]!.form.get('message')).toMatch(/did not go through/);
  });

  test('when Daraja keeps failing, then after the last attempt the order fails and the reservation is voided', async () => {
    mockDarajaToken();
    const push = nock(DARAJA_HOST).post('/mpesa/stkpush/v1/processrequest').times(5).reply(500, { errorCode: '500.001.1001', errorMessage: 'Unable to lock subscriber' });
    mockAtSmsAccepted([]);
    const order = await confirmBuy();
    expect(await settled(order.id)).toBe('failed');
    expect(push.isDone()).toBe(true);
    expect(await svc.db('stk_payments').where({ order_id: order.id }).first()).toMatchObject({ push_attempts: 5 });
    expect(await svc.db('transfers').where({ pending_id: `buy-${order.id}` }).first()).toMatchObject({ status: 'voided' });
  });

  test('when the token is rejected as invalid, then it is refreshed once and the push goes through in the same attempt', async () => {
    const stk: CapturedStk[] = [];
    mockDarajaToken('stale-token');
    nock(DARAJA_HOST).post('/mpesa/stkpush/v1/processrequest').matchHeader('authorization', 'Bearer stale-token').reply(404, { requestId: 'r', errorCode: '404.001.03', errorMessage: 'Invalid Access Token' });
    mockDarajaToken('fresh-token');
    mockStkPushAccepted(stk);
    const order = await confirmBuy();
    expect(await settled(order.id)).toBe('stk_sent');
    expect(stk[0]!.headers.authorization).toBe('Bearer fresh-token');
    expect(await svc.db('stk_payments').where({ order_id: order.id }).first()).toMatchObject({ push_attempts: 1 });
  });

  test('when several pushes run at once, then they share one cached token fetched once', async () => {
    const stk: CapturedStk[] = [];
    const oauth = mockDarajaToken('shared-token', 1);
    mockStkPushAccepted(stk, 3);
    const orders = await Promise.all([confirmBuy(), confirmBuy(), confirmBuy()]);
    for (const o of orders) expect(await settled(o.id)).toBe('stk_sent');
    expect(oauth.isDone()).toBe(true);
    expect(stk.map((s) => s.headers.authorization)).toEqual(['Bearer shared-token', 'Bearer shared-token', 'Bearer shared-token']);
    const ttl = await withRedis((r) => r.ttl(`${svc.config.queuePrefix}:daraja:token`));
    expect(ttl).toBeGreaterThan(3000);
    expect(ttl).toBeLessThanOrEqual(3599 - 60);
  });

  test('when the job runs again after the push was accepted, then no second push is sent', async () => {
    const stk: CapturedStk[] = [];
    mockDarajaToken();
    mockStkPushAccepted(stk, 2);
    const order = await confirmBuy();
    expect(await settled(order.id)).toBe('stk_sent');
    await runBuyOrder(svc.running.services, order.id, false);
    // Also the crash window: ids stored, order still stk_requested.
    await svc.db('orders').where({ id: order.id }).update({ status: 'stk_requested' });
    await runBuyOrder(svc.running.services, order.id, false);
    expect(stk).toHaveLength(1);
    expect(await orderStatus(svc, order.id)).toBe('stk_sent');
  });

  test('when the pool cannot cover the order, then it fails with an SMS and no push is sent', async () => {
    const sms: CapturedSms[] = [];
    const push = nock(DARAJA_HOST).post('/mpesa/stkpush/v1/processrequest').reply(200, {});
    // The phone is chosen first: the sold-out SMS may go out before confirmBuy returns.
    const phone = nextPhone();
    mockAtSmsAccepted(sms, undefined, 1, msisdnOf(phone));
    const order = await confirmBuy(150_000, phone); // 17.6 g; the pool holds 1 g
    expect(await settled(order.id)).toBe('failed');
    expect(push.isDone()).toBe(false);
    expect(await svc.db('orders').where({ id: order.id }).first()).toMatchObject({ failure_code: 'pool_empty' });
    expect(await svc.db('transfers').where({ id: `buy-${order.id}` }).first()).toBeUndefined();
    await waitFor(() => Promise.resolve(sms.length === 1), 'the SMS');
    expect(sms[0]!.form.get('message')).toMatch(/sold out/);
  });
});
