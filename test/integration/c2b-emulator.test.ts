import express from 'express';
import nock from 'nock';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { createDarajaEmulator, type DarajaEmulator } from '../../src/emulators/daraja-emulator';
import { RedisKeyValueStore } from '../../src/infra/kv-store';
import { createLogger } from '../../src/lib/logger';
import { registerC2bUrls } from '../../src/payments/c2b/register-urls';
import { DARAJA_HOST, expectBooksBalanced, startTestService, waitFor, type TestService } from '../support/harness';
import { TEST_REDIS_URL } from '../support/test-env';

/**
 * Pay by Paybill at the Daraja edge: registering the URLs (nock at Daraja), the emulator's register
 * and simulate (real HTTP both ways), and the whole path in emulator mode: simulate -> validation ->
 * confirmation -> gold -> receipt SMS in the Africa's Talking emulator's inbox.
 */

function listen(app: express.Express): Promise<{ server: Server; url: string }> {
  return new Promise((resolve) => {
    const server = app.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }));
  });
}

const basic = (key: string, secret: string) => `Basic ${Buffer.from(`${key}:${secret}`).toString('base64')}`;

describe('npm run mpesa:register-c2b (registerC2bUrls)', () => {
  let redis: Redis;
  const prefix = `t-c2b-register-${Date.now()}`;
  beforeAll(() => {
    redis = new Redis(TEST_REDIS_URL);
  });
  afterEach(() => nock.cleanAll());
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });

  const mpesa = { baseUrl: DARAJA_HOST, consumerKey: 'ck', consumerSecret: 'cs', httpTimeoutMs: 5000 };
  const c2b = { shortcode: '600987', validationUrl: 'https://wallet.example.com/c2b/validation/s3cret-s3cret-s3cret', confirmationUrl: 'https://wallet.example.com/c2b/confirmation/s3cret-s3cret-s3cret' };

  test('when run, then it posts ShortCode, ResponseType Completed and both URLs to /mpesa/c2b/v2/registerurl with the OAuth token, and returns the answer', async () => {
    const sent: Array<{ body: any; auth: unknown }> = [];
    nock(DARAJA_HOST).get('/oauth/v1/generate').query({ grant_type: 'client_credentials' }).basicAuth({ user: 'ck', pass: 'cs' }).reply(200, { access_token: 'tok-1', expires_in: '3599' });
    nock(DARAJA_HOST)
      .post('/mpesa/c2b/v2/registerurl')
      .reply(function (_uri, body) {
        sent.push({ body, auth: this.req.headers.authorization });
        return [200, { OriginatorCoversationID: '6e86-45dd-91ac-fd5d4178ab523408729', ResponseCode: '0', ResponseDescription: 'Success' }];
      });

    const answer = await registerC2bUrls(mpesa, c2b, new RedisKeyValueStore(redis), `${prefix}-a`);

    expect(answer).toEqual({ ok: true, httpStatus: 200, body: { OriginatorCoversationID: '6e86-45dd-91ac-fd5d4178ab523408729', ResponseCode: '0', ResponseDescription: 'Success' } });
    expect(sent).toEqual([{ body: { ShortCode: '600987', ResponseType: 'Completed', ConfirmationURL: c2b.confirmationUrl, ValidationURL: c2b.validationUrl }, auth: 'Bearer tok-1' }]);
    expect(nock.isDone()).toBe(true);
  });

  test('when Daraja refuses the registration, then the answer says so (not ok) with Daraja\'s envelope', async () => {
    nock(DARAJA_HOST).get('/oauth/v1/generate').query(true).reply(200, { access_token: 'tok-2', expires_in: '3599' });
    nock(DARAJA_HOST).post('/mpesa/c2b/v2/registerurl').reply(400, { requestId: '1-2-3', errorCode: '400.003.02', errorMessage: 'Bad Request - Invalid ValidationURL' });
    const answer = await registerC2bUrls(mpesa, c2b, new RedisKeyValueStore(redis), `${prefix}-b`);
    expect(answer).toMatchObject({ ok: false, httpStatus: 400, body: { errorCode: '400.003.02' } });
  });

  test('when the shared token was invalidated meanwhile, then it fetches a new one once and registers', async () => {
    const store = new RedisKeyValueStore(redis);
    await store.set(`${prefix}-c:daraja:token`, 'stale-token', 60_000);
    const auths: unknown[] = [];
    nock(DARAJA_HOST).get('/oauth/v1/generate').query(true).reply(200, { access_token: 'fresh-token', expires_in: '3599' });
    nock(DARAJA_HOST)
      .post('/mpesa/c2b/v2/registerurl')
      .times(2)
      .reply(function () {
        auths.push(this.req.headers.authorization);
        return this.req.headers.authorization === 'Bearer stale-token'
          ? [401, { requestId: '1', errorCode: '404.001.03', errorMessage: 'Invalid Access Token' }]
          : [200, { OriginatorCoversationID: 'x', ResponseCode: '0', ResponseDescription: 'Success' }];
      });
    const answer = await registerC2bUrls(mpesa, c2b, store, `${prefix}-c`);
    expect(answer.ok).toBe(true);
    expect(auths).toEqual(['Bearer stale-token', 'Bearer fresh-token']);
  });
});

describe('the Daraja emulator: C2B register URL and simulate', () => {
  let emulator: DarajaEmulator;
  let servers: Server[] = [];
  let base: string;
  let receiver: string;
  let token: string;
  const validations: any[] = [];
  const confirmations: any[] = [];
  let validationAnswer: { status: number; body: unknown } = { status: 200, body: { ResultCode: '0', ResultDesc: 'Accepted' } };

  beforeAll(async () => {
    emulator = createDarajaEmulator({ consumerKey: 'k', consumerSecret: 's', shortcode: '174379', passkey: 'p', log: createLogger('silent'), callbackDelayMs: 10 });
    const app = express();
    app.use('/emulators/daraja', emulator.router);
    const e = await listen(app);
    base = `${e.url}/emulators/daraja`;
    const r = express();
    r.post('/v', express.json(), (req, res) => {
      validations.push(req.body);
      res.status(validationAnswer.status).json(validationAnswer.body);
    });
    r.post('/c', express.json(), (req, res) => {
      confirmations.push(req.body);
      res.json({ ResultCode: '0', ResultDesc: 'Accepted' });
    });
    const rl = await listen(r);
    receiver = rl.url;
    servers = [e.server, rl.server];
    const t = await fetch(`${base}/oauth/v1/generate?grant_type=client_credentials`, { headers: { authorization: basic('k', 's') } });
    token = ((await t.json()) as { access_token: string }).access_token;
  });
  afterEach(() => {
    validations.length = 0;
    confirmations.length = 0;
    validationAnswer = { status: 200, body: { ResultCode: '0', ResultDesc: 'Accepted' } };
  });
  afterAll(async () => {
    emulator.close();
    for (const s of servers) await new Promise((r) => s.close(r));
  });

  const post = async (path: string, body: unknown, auth: string | null = `Bearer ${token}`) => {
    const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) }, body: JSON.stringify(body) });
    return { status: res.status, json: (await res.json()) as any };
  };
  const register = (shortcode: string, responseType = 'Completed', validation = `${receiver}/v`, version = 'v2') =>
    post(`/mpesa/c2b/${version}/registerurl`, { ShortCode: shortcode, ResponseType: responseType, ConfirmationURL: `${receiver}/c`, ValidationURL: validation });
  const simulate = (shortcode: string, over: Record<string, unknown> = {}) =>
    post('/mpesa/c2b/v1/simulate', { ShortCode: shortcode, CommandID: 'CustomerPayBillOnline', Amount: 100, Msisdn: '254708374149', BillRefNumber: '0712345678', ...over });

  test('when URLs are registered (v2 or v1), then Daraja\'s answer comes back; a bad field is named; no token is 401-ish', async () => {
    expect(await register('600100')).toMatchObject({ status: 200, json: { ResponseCode: '0', ResponseDescription: 'Success' } });
    expect(await register('600101', 'Completed', `${receiver}/v`, 'v1')).toMatchObject({ status: 200, json: { ResponseCode: '0' } });
    expect(await register('600102', 'Sometimes')).toMatchObject({ status: 400, json: { errorCode: '400.002.02', errorMessage: 'Bad Request - Invalid ResponseType' } });
    expect((await post('/mpesa/c2b/v2/registerurl', {}, null)).status).not.toBe(200);
  });

  test('when a payment is simulated for a shortcode with no URLs, then it is refused', async () => {
    expect(await simulate('600199')).toMatchObject({ status: 400, json: { errorCode: '400.002.02' } });
  });

  test('when a payment is simulated, then validation gets a v2 payload (masked MSISDN, TransID, TransTime) and, once accepted, the confirmation gets the same', async () => {
    await register('600110');
    const res = await simulate('600110', { Amount: '250' });
    expect(res).toMatchObject({ status: 200, json: { ResponseCode: '0', ResponseDescription: 'Accept the service request successfully.' } });

    await waitFor(() => Promise.resolve(confirmations.length === 1), 'the confirmation');
    expect(validations).toHaveLength(1);
    expect(confirmations[0]).toEqual(validations[0]);
    expect(confirmations[0]).toMatchObject({
      TransactionType: 'Pay Bill',
      TransID: expect.stringMatching(/^[A-Z0-9]{10}$/),
      TransTime: expect.stringMatching(/^\d{14}$/),
      TransAmount: '250.00',
      BusinessShortCode: '600110',
      BillRefNumber: '0712345678',
      MSISDN: '2547 ***** 149',
      FirstName: expect.any(String),
    });
  });

  test('when the validation URL rejects (C2B00012), then no confirmation is posted', async () => {
    await register('600120');
    validationAnswer = { status: 200, body: { ResultCode: 'C2B00012', ResultDesc: 'Rejected' } };
    await simulate('600120');
    await waitFor(() => Promise.resolve(validations.length === 1), 'the validation');
    // The same emulator posts a second, accepted payment afterwards: only that one is confirmed.
    validationAnswer = { status: 200, body: { ResultCode: '0', ResultDesc: 'Accepted' } };
    await simulate('600120', { BillRefNumber: 'SECOND' });
    await waitFor(() => Promise.resolve(confirmations.length === 1), 'the second payment\'s confirmation');
    expect(confirmations[0].BillRefNumber).toBe('SECOND');
  });

  test('when the validation URL cannot be reached, then ResponseType decides: Completed confirms, Cancelled does not', async () => {
    await register('600130', 'Completed', 'http://127.0.0.1:1/unreachable');
    await register('600131', 'Cancelled', 'http://127.0.0.1:1/unreachable');
    await simulate('600131', { BillRefNumber: 'CANCELLED' });
    await simulate('600130', { BillRefNumber: 'COMPLETED' });
    await waitFor(() => Promise.resolve(confirmations.length === 1), 'the confirmation');
    expect(confirmations.map((c) => c.BillRefNumber)).toEqual(['COMPLETED']);
  });
});

describe('Pay by Paybill in emulator mode, end to end', () => {
  let svc: TestService;
  beforeAll(async () => {
    // No AT credentials: the Africa's Talking emulator keeps an inbox per phone.
    svc = await startTestService({ MPESA_ENVIRONMENT: 'emulator', AT_USERNAME: '', AT_API_KEY: '' });
  });
  afterEach(() => expectBooksBalanced(svc.db));
  afterAll(() => svc.close());

  const inbox = async (msisdn: string) => ((await (await fetch(`${svc.url}/emulators/at/inbox/${msisdn}`)).json()) as { messages: Array<{ message: string }> }).messages;

  test('when a payment to the Paybill is simulated (as Daraja\'s sandbox does), then validation and confirmation credit the gold and the receipt SMS lands in the inbox', async () => {
    const emulatorUrl = `${svc.url}/emulators/daraja`;
    const t = await fetch(`${emulatorUrl}/oauth/v1/generate?grant_type=client_credentials`, { headers: { authorization: basic(svc.config.mpesa.consumerKey, svc.config.mpesa.consumerSecret) } });
    const token = ((await t.json()) as { access_token: string }).access_token;

    const res = await fetch(`${emulatorUrl}/mpesa/c2b/v1/simulate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ ShortCode: '174379', CommandID: 'CustomerPayBillOnline', Amount: 500, Msisdn: '254708374149', BillRefNumber: '0722 000 111' }),
    });
    expect(res.status).toBe(200);

    const messages = await waitFor(async () => {
      const m = await inbox('254722000111');
      return m.length > 0 && m;
    }, 'the receipt SMS in the emulator inbox', 20_000);
    const payment = await svc.db('c2b_payments').first();
    expect(payment).toMatchObject({ status: 'credited', msisdn: '254722000111', amount_cents: 50_000 });
    expect(payment.payload.MSISDN).toBe('2547 ***** 149');
    expect(messages[0]!.message).toContain(`M-Pesa ref ${payment.trans_id}`);
    expect(messages[0]!.message).toContain('0.0588 g for KES 500');
    const wallet = await svc.db('accounts').join('customers', 'customers.id', 'accounts.customer_id').where('customers.msisdn', '254722000111').first('accounts.credits_posted');
    expect(wallet.credits_posted).toBe(58_823);
  });

  test('when the phone simulator pays from its M-Pesa menu with an account that is not a phone, then validation rejects it and nothing is recorded', async () => {
    const before = await svc.db('c2b_payments').count({ n: '*' }).first();
    const res = await fetch(`${svc.url}/emulators/daraja/phone/paybill`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ phone: '0708374149', businessNumber: '174379', accountNumber: 'MY SAVINGS', amount: '300' }),
    });
    expect(res.status).toBe(200);
    // A payment that IS accepted afterwards shows the emulator has run both in order.
    await fetch(`${svc.url}/emulators/daraja/phone/paybill`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ phone: '0708374149', businessNumber: '174379', accountNumber: '0722000222', amount: '300' }),
    });
    await waitFor(() => svc.db('c2b_payments').where({ msisdn: '254722000222' }).first(), 'the accepted payment', 20_000);
    expect(await svc.db('c2b_payments').where({ bill_ref_number: 'MY SAVINGS' }).first()).toBeUndefined();
    expect(Number((await svc.db('c2b_payments').count({ n: '*' }).first())!.n)).toBe(Number(before!.n) + 1);
  });
});
