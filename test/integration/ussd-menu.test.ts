import nock from 'nock';
import { en } from '../../src/i18n/en';
import { sessionKey } from '../../src/ussd/session-store';
import { DARAJA_HOST, USSD_PATH, expectBooksBalanced, fundPoolGrams, startTestService, waitFor, withRedis, type TestService } from '../support/harness';
import { mockDarajaToken } from '../support/vendors';
import { dial, newSessionId, ussd } from '../support/http';

describe('POST /ussd', () => {
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

  const counts = async () => ({
    orders: Number((await svc.db('orders').count({ n: '*' }))[0]!.n),
    transfers: Number((await svc.db('transfers').count({ n: '*' }))[0]!.n),
    outbox: Number((await svc.db('outbox').count({ n: '*' }))[0]!.n),
  });

  test('when the first request arrives, then it answers 200 text/plain with the main menu (and, on a first dial, the other language)', async () => {
    const res = await ussd(svc.url, { sessionId: newSessionId(), text: '', phoneNumber: '+254712000001' });
    expect(res.status).toBe(200);
    expect(res.contentType).toMatch(/^text\/plain/);
    expect(res.text).toBe('CON Gold Savings\n1 Buy gold\n2 Sell gold\n3 My gold\n4 Statement\n5 Gold price\n6 My account\n7 Kiswahili');
    const again = await ussd(svc.url, { sessionId: newSessionId(), text: '', phoneNumber: '+254712000001' });
    expect(again.text).toBe(`CON ${en.ussd.homeTitle}\n${en.ussd.homeMenu}`);
  });

  test.each([
    ['abc', /^CON Enter whole shillings only/],
    ['-5', /^CON Enter whole shillings only/],
    ['10.5', /^CON Enter whole shillings only/],
    ['1e5', /^CON Enter whole shillings only/],
    ['9', /^CON Minimum is KES 10\./],
    ['150001', /^CON Maximum is KES 150,000\./],
    ['99999999999', /^CON Enter whole shillings only/],
  ])('when the amount is %p, then it re-prompts saying why and records nothing', async (amount, reply) => {
    const before = await counts();
    const { last } = await dial(svc.url, ['1', amount]);
    expect(last).toMatch(reply);
    expect(last).toMatch(/Enter amount in KES/);
    expect(await counts()).toEqual(before);
  });

  test('when the amount is 0, then it goes back to the main menu (0 is Back on every screen) and records nothing', async () => {
    const before = await counts();
    const { last } = await dial(svc.url, ['1', '0'], { phoneNumber: '+254712000002' });
    expect(last).toMatch(/^CON Gold Savings\n1 Buy gold\n2 Sell gold\n3 My gold\n4 Statement\n5 Gold price\n6 My account/);
    expect(await counts()).toEqual(before);
  });

  test('when a re-prompted amount is corrected, then the session continues to the confirmation', async () => {
    const { last } = await dial(svc.url, ['1', 'abc', '1000']);
    expect(last).toMatch(/^CON Buy 0\.1176 g of gold for KES 1,000/);
  });

  test('when the user cancels, then the session ends and nothing is reserved or queued', async () => {
    const before = await counts();
    const { last } = await dial(svc.url, ['1', '500', '2']);
    expect(last).toBe('END Purchase cancelled. Nothing was charged.');
    expect(await counts()).toEqual(before);
  });

  test('when Africa\'s Talking repeats the confirm request, then one order is placed and the same answer is given', async () => {
    // Its buy job runs: Daraja refuses the push for good, so the job ends at once (order failed).
    mockDarajaToken();
    nock(DARAJA_HOST).post('/mpesa/stkpush/v1/processrequest').reply(400, { requestId: 'r-1', errorCode: '400.002.02', errorMessage: 'Bad Request - Invalid PhoneNumber' });
    const sessionId = newSessionId();
    await dial(svc.url, ['1', '700'], { sessionId });
    const first = await ussd(svc.url, { sessionId, text: '1*700*1' });
    const again = await Promise.all([1, 2, 3].map(() => ussd(svc.url, { sessionId, text: '1*700*1' })));
    expect(first.text).toMatch(/^END Request received.*KES 700/);
    for (const r of again) expect(r.text).toBe(first.text);
    expect(await svc.db('orders').where('source_key', 'like', `ussd:%:${sessionId}`).count({ n: '*' })).toEqual([{ n: 1 }]);
    // The job reserves, then voids and writes the failure SMS: wait for it, so that the tests after
    // this one, which count rows, never see it still at work.
    await waitFor(async () => (await svc.db('orders').where('source_key', 'like', `ussd:%:${sessionId}`).first())?.status === 'failed', 'the buy job to finish');
  });

  test('when the service code is not ours, then it ends with a refusal and records nothing', async () => {
    const before = await counts();
    const res = await ussd(svc.url, { sessionId: newSessionId(), text: '', serviceCode: '*999#' });
    expect(res.text).toBe('END Sorry, this service code is not available.');
    expect(await counts()).toEqual(before);
  });

  test.each(['+255712345678', '+254202345678', 'not-a-number'])('when the phone %p cannot be an M-Pesa number, then it ends clearly', async (phoneNumber) => {
    const res = await ussd(svc.url, { sessionId: newSessionId(), text: '', phoneNumber });
    expect(res.text).toBe('END Sorry, this service needs a Safaricom M-Pesa line.');
  });

  test('when the body is malformed, then it still answers 200 END and changes nothing', async () => {
    const before = await counts();
    const res = await fetch(`${svc.url}${USSD_PATH}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'text=1' });
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/^END /);
    expect(await counts()).toEqual(before);
  });

  test('session state lives in Redis with a TTL of at least 180 s', async () => {
    const sessionId = newSessionId();
    await dial(svc.url, ['1'], { sessionId });
    const key = sessionKey(svc.config.queuePrefix, '254712345678', sessionId);
    await withRedis(async (redis) => {
      expect(JSON.parse((await redis.get(key))!).state.screen).toBe('buy.amount');
      expect(await redis.ttl(key)).toBeGreaterThanOrEqual(180);
    });
  });
});
