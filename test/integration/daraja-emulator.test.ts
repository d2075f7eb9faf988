import express from 'express';
import { Redis } from 'ioredis';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPairSync } from 'node:crypto';
import { createDarajaEmulator, EMULATOR_B2C_TEST_NUMBERS, EMULATOR_TEST_NUMBERS, type DarajaEmulator, type DarajaEmulatorOptions } from '../../src/emulators/daraja-emulator';
import { createLogger } from '../../src/lib/logger';
import { toMpesaMsisdn, type Msisdn } from '../../src/lib/msisdn';
import { DarajaClient } from '../../src/vendors/daraja-client';
import {
  b2cResultSchema,
  parseDarajaDateTime,
  queueTimeoutSchema,
  stkCallbackSchema,
  toB2cResult,
  toQueueTimeout,
  toStkResult,
  toTransactionStatusResult,
  transactionStatusResultSchema,
} from '../../src/vendors/daraja-callbacks';
import { securityCredential } from '../../src/vendors/daraja-security-credential';
import { darajaPassword, darajaTimestamp } from '../../src/vendors/daraja-time';
import { TEST_REDIS_URL } from '../support/test-env';
import { RedisKeyValueStore } from '../../src/infra/kv-store';

/**
 * Contract tests for the Daraja emulator: real HTTP in (the router in a bare express app on port 0),
 * real HTTP out (a callback receiver on port 0). Expected shapes come from REFERENCE.md.
 */

const KEY = 'emu-consumer-key';
const SECRET = 'emu-consumer-secret';
const SHORTCODE = '174379';
const PASSKEY = 'bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919';
const TIMINGS = { callbackDelayMs: 20, promptTimeoutMs: 300, lateCallbackDelayMs: 300 };

const APPROVES = '254708374149';
const REJECTS = '254711223344';
const LOST = '254700000005';
const DUPLICATED = '254700000006';
const LATE = '254700000007';
const NO_ANSWER = '254700000004';

interface Received {
  body: any;
  contentType: string | undefined;
  at: number;
}

let clockOffsetMs = 0;
const now = () => new Date(Date.now() + clockOffsetMs);
const log = createLogger('silent');
let emulator: DarajaEmulator;
let emulatorServer: Server;
let receiverServer: Server;
let baseUrl: string;
let callbackUrl: string;
const received: Received[] = [];
let token: string;
/** B2C Results, queue timeouts and Transaction Status Results, by the receiver path they arrived at. */
const asyncReceived: Array<{ kind: string; body: any; at: number }> = [];
let asyncUrls: { result: string; timeout: string; status: string; statusTimeout: string };

function listen(app: express.Express): Promise<{ server: Server; url: string }> {
  return new Promise((resolve) => {
    const server = app.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }));
  });
}

beforeAll(async () => {
  emulator = createDarajaEmulator({ consumerKey: KEY, consumerSecret: SECRET, shortcode: SHORTCODE, passkey: PASSKEY, log, now, ...TIMINGS });
  const app = express();
  app.use('/emulators/daraja', emulator.router);
  const e = await listen(app);
  emulatorServer = e.server;
  baseUrl = `${e.url}/emulators/daraja`;

  const receiver = express();
  receiver.post('/mpesa/callback/secret', express.json(), (req, res) => {
    received.push({ body: req.body, contentType: req.headers['content-type'], at: Date.now() });
    res.json({ ResultCode: 0, ResultDesc: 'Accepted' });
  });
  receiver.post('/b2c/:kind', express.json(), (req, res) => {
    asyncReceived.push({ kind: String(req.params.kind), body: req.body, at: Date.now() });
    res.json({ ResultCode: 0, ResultDesc: 'Accepted' });
  });
  const r = await listen(receiver);
  receiverServer = r.server;
  callbackUrl = `${r.url}/mpesa/callback/secret`;
  asyncUrls = { result: `${r.url}/b2c/result`, timeout: `${r.url}/b2c/timeout`, status: `${r.url}/b2c/status`, statusTimeout: `${r.url}/b2c/status-timeout` };

  token = await newToken();
});

afterEach(() => {
  clockOffsetMs = 0;
});

afterAll(async () => {
  emulator.close();
  await new Promise((r) => emulatorServer.close(r));
  await new Promise((r) => receiverServer.close(r));
});

// ---------------------------------------------------------------- helpers

async function call(method: 'GET' | 'POST', path: string, opts: { body?: unknown; raw?: string; auth?: string | null } = {}) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const auth = opts.auth === undefined ? `Bearer ${token}` : opts.auth;
  if (auth !== null) headers.authorization = auth;
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers,
    ...(method === 'POST' ? { body: opts.raw ?? JSON.stringify(opts.body ?? {}) } : {}),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}

function basic(key: string, secret: string) {
  return `Basic ${Buffer.from(`${key}:${secret}`).toString('base64')}`;
}

async function newToken(): Promise<string> {
  const res = await call('GET', '/oauth/v1/generate?grant_type=client_credentials', { auth: basic(KEY, SECRET) });
  expect(res.status).toBe(200);
  return res.json.access_token;
}

/** A valid STK Push body for `phone`, with one Timestamp computed once for both fields (as our client does). */
function stkBody(phone: string, overrides: Record<string, unknown> = {}, at: Date = new Date()) {
  const Timestamp = darajaTimestamp(at);
  return {
    BusinessShortCode: SHORTCODE,
    Password: darajaPassword(SHORTCODE, PASSKEY, Timestamp),
    Timestamp,
    TransactionType: 'CustomerPayBillOnline',
    Amount: 500,
    PartyA: phone,
    PartyB: SHORTCODE,
    PhoneNumber: phone,
    CallBackURL: callbackUrl,
    AccountReference: 'GW7K2M9Q',
    TransactionDesc: 'Buy gold',
    ...overrides,
  };
}

function queryBody(checkoutRequestId: string, at: Date = new Date()) {
  const Timestamp = darajaTimestamp(at);
  return { BusinessShortCode: SHORTCODE, Password: darajaPassword(SHORTCODE, PASSKEY, Timestamp), Timestamp, CheckoutRequestID: checkoutRequestId };
}

async function push(phone: string, overrides: Record<string, unknown> = {}) {
  return call('POST', '/mpesa/stkpush/v1/processrequest', { body: stkBody(phone, overrides) });
}

/** Pushes and expects acceptance; returns the ids. */
async function accepted(phone: string, overrides: Record<string, unknown> = {}) {
  const res = await push(phone, overrides);
  expect(res.status).toBe(200);
  return { checkoutRequestId: res.json.CheckoutRequestID as string, merchantRequestId: res.json.MerchantRequestID as string, sentAt: Date.now() };
}

async function query(checkoutRequestId: string) {
  return call('POST', '/mpesa/stkpushquery/v1/query', { body: queryBody(checkoutRequestId) });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(probe: () => T | undefined | Promise<T | undefined>, what: string, timeoutMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const callbacksFor = (checkoutRequestId: string) => received.filter((r) => r.body?.Body?.stkCallback?.CheckoutRequestID === checkoutRequestId);

async function callbackFor(checkoutRequestId: string): Promise<Received> {
  return waitFor(() => callbacksFor(checkoutRequestId)[0], `the callback for ${checkoutRequestId}`);
}

async function openPrompt(phone: string) {
  const res = await call('GET', `/prompts?phone=${encodeURIComponent(phone)}`, { auth: null });
  expect(res.status).toBe(200);
  return res.json.prompts as any[];
}

const pin = (id: string, value: unknown) => call('POST', `/prompts/${id}/pin`, { body: { pin: value }, auth: null });
const cancel = (id: string) => call('POST', `/prompts/${id}/cancel`, { auth: null });

const REQUEST_ID = expect.stringMatching(/^\d{5}-\d{8}-1$/);
const CHECKOUT_ID = /^ws_CO_\d{20}$/;
const RECEIPT = /^[A-Z0-9]{10}$/;

// ---------------------------------------------------------------- OAuth

describe('OAuth', () => {
  test('when the consumer key and secret are right, then a token is issued for 3599 s as a string', async () => {
    const res = await call('GET', '/oauth/v1/generate?grant_type=client_credentials', { auth: basic(KEY, SECRET) });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ access_token: expect.stringMatching(/^[A-Za-z0-9]{28}$/), expires_in: '3599' });
    token = res.json.access_token;
  });

  test('when the secret is wrong, then 400 400.008.01 Invalid Authentication passed', async () => {
    const res = await call('GET', '/oauth/v1/generate?grant_type=client_credentials', { auth: basic(KEY, 'nope') });
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ requestId: REQUEST_ID, errorCode: '400.008.01', errorMessage: 'Invalid Authentication passed' });
  });

  test('when the Authorization header is missing, then 400 400.008.01', async () => {
    const res = await call('GET', '/oauth/v1/generate?grant_type=client_credentials', { auth: null });
    expect(res.status).toBe(400);
    expect(res.json.errorCode).toBe('400.008.01');
  });

  test('when grant_type is not client_credentials, then 400 400.008.02', async () => {
    const res = await call('GET', '/oauth/v1/generate?grant_type=password', { auth: basic(KEY, SECRET) });
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ requestId: REQUEST_ID, errorCode: '400.008.02', errorMessage: 'Invalid grant type passed' });
  });

  test('when a newer token is issued, then the older one is refused with HTTP 404 404.001.03 and the newer works', async () => {
    const older = await newToken();
    const newer = await newToken();
    expect(newer).not.toBe(older);
    const refused = await call('POST', '/mpesa/stkpushquery/v1/query', { body: queryBody('ws_CO_unknown'), auth: `Bearer ${older}` });
    expect(refused.status).toBe(404);
    expect(refused.json).toEqual({ requestId: REQUEST_ID, errorCode: '404.001.03', errorMessage: 'Invalid Access Token' });
    // Past the token check, the unknown id is what gets refused.
    const allowed = await call('POST', '/mpesa/stkpushquery/v1/query', { body: queryBody('ws_CO_unknown'), auth: `Bearer ${newer}` });
    expect(allowed.status).toBe(400);
    token = newer;
  });

  test('when the token is older than 3599 s, then it is refused with 404.001.03', async () => {
    const fresh = await newToken();
    token = fresh;
    clockOffsetMs = 3600 * 1000;
    const res = await call('POST', '/mpesa/stkpushquery/v1/query', { body: queryBody('ws_CO_unknown', now()) });
    expect(res.status).toBe(404);
    expect(res.json.errorCode).toBe('404.001.03');
    clockOffsetMs = 0;
    token = await newToken();
  });

  test('when the Bearer header is missing or malformed, then 404.001.03 before the body is looked at', async () => {
    for (const auth of [null, token, `Basic ${token}`, 'Bearer ']) {
      const res = await call('POST', '/mpesa/stkpush/v1/processrequest', { body: stkBody('254712000099'), auth });
      expect(res.status).toBe(404);
      expect(res.json).toEqual({ requestId: REQUEST_ID, errorCode: '404.001.03', errorMessage: 'Invalid Access Token' });
    }
  });
});

// ---------------------------------------------------------------- STK Push validation

describe('STK Push validation', () => {
  // A human-prompt number: if any of these were wrongly accepted, it would answer 200.
  const PHONE = '254712000010';
  const sixMinutesAgo = () => new Date(Date.now() - 6 * 60 * 1000);
  // A wrongly accepted push would lock PHONE and fail every later case for the wrong reason.
  afterEach(async () => {
    for (const p of await openPrompt(PHONE)) await cancel(p.id);
  });

  test.each<[string, () => Record<string, unknown>, string]>([
    ['BusinessShortCode is not ours', () => ({ BusinessShortCode: '600000' }), 'BusinessShortCode'],
    ['BusinessShortCode is not digits', () => ({ BusinessShortCode: '17A379' }), 'BusinessShortCode'],
    ['Timestamp has the wrong format', () => ({ Timestamp: '2026-11-26 10:00:00' }), 'Timestamp'],
    ['Timestamp is not a calendar date', () => ({ Timestamp: '20261301100000' }), 'Timestamp'],
    [
      'Timestamp is 6 minutes old (clock skew), even with a matching Password',
      () => {
        const ts = darajaTimestamp(sixMinutesAgo());
        return { Timestamp: ts, Password: darajaPassword(SHORTCODE, PASSKEY, ts) };
      },
      'Timestamp',
    ],
    ['TransactionType is unknown', () => ({ TransactionType: 'CustomerPayBill' }), 'TransactionType'],
    ['Amount has decimals', () => ({ Amount: 10.5 }), 'Amount'],
    ['Amount is a decimal string', () => ({ Amount: '10.50' }), 'Amount'],
    ['Amount is 0', () => ({ Amount: 0 }), 'Amount'],
    ['Amount is 250001', () => ({ Amount: 250_001 }), 'Amount'],
    ['Amount is missing', () => ({ Amount: undefined }), 'Amount'],
    ['PartyA is not a Kenyan mobile', () => ({ PartyA: '254812000010' }), 'PartyA'],
    ['PartyA differs from PhoneNumber', () => ({ PartyA: '254712000011' }), 'PartyA'],
    ['PartyB is not digits', () => ({ PartyB: 'till-1' }), 'PartyB'],
    ['PartyA and PhoneNumber are in 07 form', () => ({ PartyA: '0712000010', PhoneNumber: '0712000010' }), 'PartyA'],
    ['PhoneNumber alone is in +254 form', () => ({ PhoneNumber: '+254712000010' }), 'PhoneNumber'],
    ['PhoneNumber is too short', () => ({ PhoneNumber: '25471200001' }), 'PhoneNumber'],
    ['CallBackURL is not a URL', () => ({ CallBackURL: 'not a url' }), 'CallBackURL'],
    ['CallBackURL is not http(s)', () => ({ CallBackURL: 'ftp://127.0.0.1/cb' }), 'CallBackURL'],
    ['AccountReference has 13 characters', () => ({ AccountReference: 'A'.repeat(13) }), 'AccountReference'],
    ['AccountReference is empty', () => ({ AccountReference: '' }), 'AccountReference'],
    ['TransactionDesc has 14 characters', () => ({ TransactionDesc: 'D'.repeat(14) }), 'TransactionDesc'],
  ])('when %s, then 400 400.002.02 naming the field', async (_name, overrides, field) => {
    const res = await push(PHONE, overrides());
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ requestId: REQUEST_ID, errorCode: '400.002.02', errorMessage: `Bad Request - Invalid ${field}` });
    expect(await openPrompt(PHONE)).toEqual([]);
  });

  test('when the Password was built with another passkey, then HTTP 500 500.001.1001 Wrong credentials', async () => {
    const body = stkBody(PHONE);
    body.Password = darajaPassword(SHORTCODE, 'not-the-passkey', body.Timestamp);
    const res = await call('POST', '/mpesa/stkpush/v1/processrequest', { body });
    expect(res.status).toBe(500);
    expect(res.json).toEqual({ requestId: REQUEST_ID, errorCode: '500.001.1001', errorMessage: 'Wrong credentials' });
    expect(await openPrompt(PHONE)).toEqual([]);
  });

  test('when the Password was built from a different Timestamp than the one sent, then Wrong credentials', async () => {
    const body = stkBody(PHONE);
    body.Password = darajaPassword(SHORTCODE, PASSKEY, darajaTimestamp(new Date(Date.now() - 1000)));
    const res = await call('POST', '/mpesa/stkpush/v1/processrequest', { body });
    expect(res.status).toBe(500);
    expect(res.json.errorMessage).toBe('Wrong credentials');
  });

  test('when the body is not JSON, then 400 400.002.02', async () => {
    const res = await call('POST', '/mpesa/stkpush/v1/processrequest', { raw: '{"Amount": 5' });
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ requestId: REQUEST_ID, errorCode: '400.002.02', errorMessage: 'Bad Request - Invalid JSON' });
  });

  test('when Amount and numbers come as strings/numbers, a 4-minute skew and the buy-goods type, then the push is accepted with Daraja\'s answer', async () => {
    const ts = darajaTimestamp(new Date(Date.now() + 4 * 60 * 1000));
    const res = await push(PHONE, {
      Amount: '250000',
      BusinessShortCode: Number(SHORTCODE),
      PartyB: 5_123_456,
      TransactionType: 'CustomerBuyGoodsOnline',
      Timestamp: ts,
      Password: darajaPassword(SHORTCODE, PASSKEY, ts),
    });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      MerchantRequestID: expect.stringMatching(/^\d{5}-\d{8}-1$/),
      CheckoutRequestID: expect.stringMatching(CHECKOUT_ID),
      ResponseCode: '0',
      ResponseDescription: 'Success. Request accepted for processing',
      CustomerMessage: 'Success. Request accepted for processing',
    });
    const [prompt] = await openPrompt(PHONE);
    expect(prompt.amount).toBe(250_000);
    expect(prompt.businessShortCode).toBe(SHORTCODE);
    expect((await cancel(res.json.CheckoutRequestID)).status).toBe(200);
  });
});

// ---------------------------------------------------------------- scripted outcomes

describe('scripted paying numbers', () => {
  test('the published table lists valid, distinct Safaricom numbers, including the sandbox MSISDN', () => {
    const numbers = EMULATOR_TEST_NUMBERS.map((n) => n.msisdn);
    expect(new Set(numbers).size).toBe(numbers.length);
    for (const n of numbers) expect(n).toMatch(/^2547\d{8}$/);
    expect(numbers).toEqual(expect.arrayContaining([APPROVES, REJECTS, LOST, DUPLICATED, LATE, NO_ANSWER, '254700000001', '254700000002', '254700000003']));
    for (const n of EMULATOR_TEST_NUMBERS) expect(n.behaviour.length).toBeGreaterThan(10);
  });

  test('when 254708374149 is pushed, then one success callback in Daraja\'s exact shape arrives and Query agrees', async () => {
    const { checkoutRequestId, merchantRequestId } = await accepted(APPROVES, { Amount: 750 });
    const cb = await callbackFor(checkoutRequestId);
    expect(cb.contentType).toMatch(/^application\/json/);
    expect(cb.body).toEqual({
      Body: {
        stkCallback: {
          MerchantRequestID: merchantRequestId,
          CheckoutRequestID: checkoutRequestId,
          ResultCode: 0,
          ResultDesc: 'The service request is processed successfully.',
          CallbackMetadata: {
            Item: [
              { Name: 'Amount', Value: 750 },
              { Name: 'MpesaReceiptNumber', Value: expect.stringMatching(RECEIPT) },
              { Name: 'Balance' },
              { Name: 'TransactionDate', Value: expect.any(Number) },
              { Name: 'PhoneNumber', Value: 254708374149 },
            ],
          },
        },
      },
    });
    const date = String(cb.body.Body.stkCallback.CallbackMetadata.Item[3].Value);
    expect(date).toMatch(/^\d{14}$/);
    // TransactionDate is EAT wall-clock time, within a few seconds of now.
    expect(Math.abs(Number(date) - Number(darajaTimestamp(new Date())))).toBeLessThan(100);
    // Our own service's parser accepts it and finds the payment.
    const parsed = toStkResult(stkCallbackSchema.parse(cb.body));
    expect(parsed.paid).toEqual({ amount: '750', receipt: cb.body.Body.stkCallback.CallbackMetadata.Item[1].Value, transactionDate: date, phone: APPROVES });

    const q = await query(checkoutRequestId);
    expect(q.status).toBe(200);
    expect(q.json).toEqual({
      ResponseCode: '0',
      ResponseDescription: 'The service request has been accepted successsfully',
      MerchantRequestID: merchantRequestId,
      CheckoutRequestID: checkoutRequestId,
      ResultCode: '0',
      ResultDesc: 'The service request is processed successfully.',
    });
    await sleep(60);
    expect(callbacksFor(checkoutRequestId)).toHaveLength(1);
  });

  test.each<[string, string, number, string]>([
    ['rejects (push failed)', REJECTS, 1025, 'An error occurred while sending a push request.'],
    ['cancels', '254700000001', 1032, 'Request cancelled by user'],
    ['has insufficient funds', '254700000002', 1, 'The balance is insufficient for the transaction.'],
    ['types a wrong PIN', '254700000003', 2001, 'The initiator information is invalid.'],
  ])('when the payer %s (%s), then one failure callback with ResultCode %i and no metadata; Query says the same as a string', async (_n, phone, code, desc) => {
    const { checkoutRequestId, merchantRequestId } = await accepted(phone);
    const cb = await callbackFor(checkoutRequestId);
    expect(cb.body).toEqual({ Body: { stkCallback: { MerchantRequestID: merchantRequestId, CheckoutRequestID: checkoutRequestId, ResultCode: code, ResultDesc: desc } } });
    const q = await query(checkoutRequestId);
    expect(q.status).toBe(200);
    expect(q.json.ResultCode).toBe(String(code));
    expect(q.json.ResultDesc).toBe(desc);
  });

  test('when 254700000004 never answers, then Query is pending for promptTimeoutMs and then a 1037 callback arrives', async () => {
    const { checkoutRequestId, sentAt } = await accepted(NO_ANSWER);
    await sleep(100);
    expect((await query(checkoutRequestId)).json.errorMessage).toBe('The transaction is being processed');
    expect(callbacksFor(checkoutRequestId)).toHaveLength(0);
    const cb = await callbackFor(checkoutRequestId);
    expect(cb.at - sentAt).toBeGreaterThanOrEqual(TIMINGS.promptTimeoutMs - 20);
    expect(cb.body.Body.stkCallback).toMatchObject({ ResultCode: 1037, ResultDesc: 'DS timeout user cannot be reached' });
    expect(cb.body.Body.stkCallback.CallbackMetadata).toBeUndefined();
  });

  test('when the callback is LOST, then none is ever posted but Query returns ResultCode "0"', async () => {
    const { checkoutRequestId } = await accepted(LOST);
    const final = await waitFor(async () => {
      const q = await query(checkoutRequestId);
      return q.status === 200 ? q : undefined;
    }, 'a final Query answer');
    expect(final.json).toMatchObject({ ResponseCode: '0', ResultCode: '0', ResultDesc: 'The service request is processed successfully.' });
    await sleep(100);
    expect(callbacksFor(checkoutRequestId)).toHaveLength(0);
  });

  test('when the callback is DUPLICATED, then the identical success callback arrives exactly twice', async () => {
    const { checkoutRequestId } = await accepted(DUPLICATED);
    await waitFor(() => callbacksFor(checkoutRequestId).length === 2 || undefined, 'two callbacks');
    await sleep(60);
    const both = callbacksFor(checkoutRequestId);
    expect(both).toHaveLength(2);
    expect(both[1]!.body).toEqual(both[0]!.body);
    expect(both[0]!.body.Body.stkCallback.ResultCode).toBe(0);
    expect(both[0]!.body.Body.stkCallback.CallbackMetadata.Item[1].Value).toMatch(RECEIPT);
  });

  test('when the callback is LATE, then Query says "being processed" until lateCallbackDelayMs, then the success callback arrives', async () => {
    const { checkoutRequestId, sentAt } = await accepted(LATE);
    await sleep(TIMINGS.callbackDelayMs * 5);
    const pending = await query(checkoutRequestId);
    expect(pending.status).toBe(500);
    expect(pending.json).toEqual({ requestId: REQUEST_ID, errorCode: '500.001.1001', errorMessage: 'The transaction is being processed' });
    expect(callbacksFor(checkoutRequestId)).toHaveLength(0);

    const cb = await callbackFor(checkoutRequestId);
    expect(cb.at - sentAt).toBeGreaterThanOrEqual(TIMINGS.lateCallbackDelayMs - 20);
    expect(cb.body.Body.stkCallback.ResultCode).toBe(0);
    expect((await query(checkoutRequestId)).json.ResultCode).toBe('0');
  });

  test('when close() is called, then scheduled callbacks are never posted', async () => {
    const other = createDarajaEmulator({ consumerKey: KEY, consumerSecret: SECRET, shortcode: SHORTCODE, passkey: PASSKEY, log, ...TIMINGS });
    const app = express();
    app.use(other.router);
    const { server, url } = await listen(app);
    try {
      const tokenRes = await fetch(`${url}/oauth/v1/generate?grant_type=client_credentials`, { headers: { authorization: basic(KEY, SECRET) } });
      const otherToken = ((await tokenRes.json()) as { access_token: string }).access_token;
      const res = await fetch(`${url}/mpesa/stkpush/v1/processrequest`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${otherToken}` },
        body: JSON.stringify(stkBody(APPROVES)),
      });
      expect(res.status).toBe(200);
      const { CheckoutRequestID } = (await res.json()) as { CheckoutRequestID: string };
      other.close();
      await sleep(TIMINGS.callbackDelayMs * 5);
      expect(callbacksFor(CheckoutRequestID)).toHaveLength(0);
      // Its timer never fired, so the session never reached a final result.
      const q = await fetch(`${url}/mpesa/stkpushquery/v1/query`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${otherToken}` },
        body: JSON.stringify(queryBody(CheckoutRequestID)),
      });
      expect(q.status).toBe(500);
      expect(((await q.json()) as { errorMessage: string }).errorMessage).toBe('The transaction is being processed');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

// ---------------------------------------------------------------- STK Query

describe('STK Query', () => {
  test('when the payment is pending, then HTTP 500 500.001.1001 "The transaction is being processed"; once cancelled, 200 with ResultCode "1032"', async () => {
    const { checkoutRequestId, merchantRequestId } = await accepted('254712000020');
    const pending = await query(checkoutRequestId);
    expect(pending.status).toBe(500);
    expect(pending.json).toEqual({ requestId: REQUEST_ID, errorCode: '500.001.1001', errorMessage: 'The transaction is being processed' });

    expect((await cancel(checkoutRequestId)).status).toBe(200);
    const final = await query(checkoutRequestId);
    expect(final.status).toBe(200);
    expect(final.json).toEqual({
      ResponseCode: '0',
      ResponseDescription: 'The service request has been accepted successsfully',
      MerchantRequestID: merchantRequestId,
      CheckoutRequestID: checkoutRequestId,
      ResultCode: '1032',
      ResultDesc: 'Request cancelled by user',
    });
  });

  test('when the CheckoutRequestID is unknown, then 400 400.002.02 Invalid CheckoutRequestID', async () => {
    const res = await query('ws_CO_26112026100000000000');
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ requestId: REQUEST_ID, errorCode: '400.002.02', errorMessage: 'Bad Request - Invalid CheckoutRequestID' });
  });

  test('when the Query Password is wrong, then 500 Wrong credentials; when its Timestamp is malformed, then 400 Invalid Timestamp', async () => {
    const wrong = { ...queryBody('ws_CO_x'), Password: darajaPassword(SHORTCODE, 'nope', darajaTimestamp(new Date())) };
    const r1 = await call('POST', '/mpesa/stkpushquery/v1/query', { body: wrong });
    expect(r1.status).toBe(500);
    expect(r1.json.errorMessage).toBe('Wrong credentials');
    const r2 = await call('POST', '/mpesa/stkpushquery/v1/query', { body: { ...queryBody('ws_CO_x'), Timestamp: '202611261000' } });
    expect(r2.status).toBe(400);
    expect(r2.json.errorMessage).toBe('Bad Request - Invalid Timestamp');
  });
});

// ---------------------------------------------------------------- subscriber lock

describe('one STK session per phone', () => {
  test('when a phone already has an open prompt, then a second push gets 500.001.1001 Unable to lock subscriber, until the first closes', async () => {
    const phone = '254712000030';
    const first = await accepted(phone);
    const second = await push(phone);
    expect(second.status).toBe(500);
    expect(second.json).toEqual({
      requestId: REQUEST_ID,
      errorCode: '500.001.1001',
      errorMessage: 'Unable to lock subscriber, a transaction is already in process for the current subscriber',
    });
    // Another phone is not affected.
    const elsewhere = await accepted('254712000031');
    expect(await openPrompt(phone)).toHaveLength(1);

    await cancel(first.checkoutRequestId);
    const third = await accepted(phone);
    expect(third.checkoutRequestId).not.toBe(first.checkoutRequestId);
    await cancel(third.checkoutRequestId);
    await cancel(elsewhere.checkoutRequestId);
  });

  test('when a scripted outcome is still pending (late number), then the phone is locked too', async () => {
    const { checkoutRequestId } = await accepted(LATE);
    const again = await push(LATE);
    expect(again.status).toBe(500);
    expect(again.json.errorMessage).toMatch(/^Unable to lock subscriber/);
    await callbackFor(checkoutRequestId);
    expect((await push(LATE)).status).toBe(200);
  });
});

// ---------------------------------------------------------------- human prompts

describe('human prompts (phone simulator)', () => {
  test('when a push goes to any other number, then the prompt is listed for that phone in +254, 254 and 07 forms', async () => {
    const phone = '254712000040';
    const { checkoutRequestId } = await accepted(phone, { Amount: 1200, AccountReference: 'GWREF0001', TransactionDesc: 'Gold 1200' });
    const expected = [
      {
        id: checkoutRequestId,
        phone,
        amount: 1200,
        accountReference: 'GWREF0001',
        transactionDesc: 'Gold 1200',
        businessShortCode: SHORTCODE,
        createdAt: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/),
        expiresAt: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/),
      },
    ];
    const prompts = await openPrompt('+254712000040');
    expect(prompts).toEqual(expected);
    expect(Date.parse(prompts[0].expiresAt) - Date.parse(prompts[0].createdAt)).toBe(TIMINGS.promptTimeoutMs);
    expect(await openPrompt(phone)).toEqual(expected);
    expect(await openPrompt('0712000040')).toEqual(expected);
    // An unencoded + in a query string arrives as a space; it must still find the phone.
    expect((await call('GET', '/prompts?phone=+254712000040', { auth: null })).json.prompts).toEqual(expected);
    expect(await openPrompt('254712000041')).toEqual([]);
    expect(callbacksFor(checkoutRequestId)).toHaveLength(0);
    await cancel(checkoutRequestId);
  });

  test('when the phone is not a Kenyan mobile, then GET /prompts answers 400', async () => {
    const res = await call('GET', '/prompts?phone=12345', { auth: null });
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ error: 'invalid_phone' });
    expect((await call('GET', '/prompts', { auth: null })).status).toBe(400);
  });

  test('when the right PIN is typed, then "paid" with a receipt, and the success callback carries that receipt', async () => {
    const phone = '254712000050';
    const { checkoutRequestId } = await accepted(phone, { Amount: '300' });
    const res = await pin(checkoutRequestId, '1234');
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ result: 'paid', receipt: expect.stringMatching(RECEIPT) });
    const cb = await callbackFor(checkoutRequestId);
    expect(cb.body.Body.stkCallback.ResultCode).toBe(0);
    expect(cb.body.Body.stkCallback.CallbackMetadata.Item).toEqual([
      { Name: 'Amount', Value: 300 },
      { Name: 'MpesaReceiptNumber', Value: res.json.receipt },
      { Name: 'Balance' },
      { Name: 'TransactionDate', Value: expect.any(Number) },
      { Name: 'PhoneNumber', Value: 254712000050 },
    ]);
    expect(await openPrompt(phone)).toEqual([]);
    expect((await pin(checkoutRequestId, '1234')).status).toBe(404);
    expect((await query(checkoutRequestId)).json.ResultCode).toBe('0');
  });

  test('when PIN 9999 is typed, then "wrong_pin" and a 2001 callback without metadata', async () => {
    const { checkoutRequestId } = await accepted('254712000060');
    const res = await pin(checkoutRequestId, '9999');
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ result: 'wrong_pin' });
    const cb = await callbackFor(checkoutRequestId);
    expect(cb.body.Body.stkCallback).toEqual({
      MerchantRequestID: expect.any(String),
      CheckoutRequestID: checkoutRequestId,
      ResultCode: 2001,
      ResultDesc: 'The initiator information is invalid.',
    });
  });

  test('when the PIN is not 4 digits, then 400 and the prompt stays open', async () => {
    const phone = '254712000070';
    const { checkoutRequestId } = await accepted(phone);
    for (const bad of ['123', '12345', '12a4', 1234, undefined]) {
      const res = await pin(checkoutRequestId, bad);
      expect(res.status).toBe(400);
      expect(res.json).toEqual({ error: 'invalid_pin' });
    }
    const malformed = await call('POST', `/prompts/${checkoutRequestId}/pin`, { raw: '{"pin":', auth: null });
    expect(malformed.status).toBe(400);
    expect(await openPrompt(phone)).toHaveLength(1);
    expect(callbacksFor(checkoutRequestId)).toHaveLength(0);
    await cancel(checkoutRequestId);
  });

  test('when the payer cancels, then a 1032 callback and the prompt is closed', async () => {
    const phone = '254712000080';
    const { checkoutRequestId } = await accepted(phone);
    const res = await cancel(checkoutRequestId);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ result: 'cancelled' });
    const cb = await callbackFor(checkoutRequestId);
    expect(cb.body.Body.stkCallback).toMatchObject({ ResultCode: 1032, ResultDesc: 'Request cancelled by user' });
    expect(await openPrompt(phone)).toEqual([]);
    expect((await cancel(checkoutRequestId)).status).toBe(404);
  });

  test('when nobody answers within promptTimeoutMs, then a 1037 callback, the prompt disappears and a late PIN gets 404', async () => {
    const phone = '254712000090';
    const { checkoutRequestId, sentAt } = await accepted(phone);
    const cb = await callbackFor(checkoutRequestId);
    expect(cb.at - sentAt).toBeGreaterThanOrEqual(TIMINGS.promptTimeoutMs - 20);
    expect(cb.body.Body.stkCallback).toMatchObject({ ResultCode: 1037, ResultDesc: 'DS timeout user cannot be reached' });
    expect(await openPrompt(phone)).toEqual([]);
    const late = await pin(checkoutRequestId, '1234');
    expect(late.status).toBe(404);
    expect(late.json).toEqual({ error: 'prompt_not_found' });
    expect((await query(checkoutRequestId)).json.ResultCode).toBe('1037');
  });

  test('when the prompt id is unknown, or belongs to a scripted number, then 404', async () => {
    expect((await pin('ws_CO_nope', '1234')).status).toBe(404);
    expect((await cancel('ws_CO_nope')).status).toBe(404);
    const { checkoutRequestId } = await accepted('254700000002');
    expect((await pin(checkoutRequestId, '1234')).status).toBe(404);
    await callbackFor(checkoutRequestId);
  });

  test('when several prompts are paid, then every receipt is distinct and 10 uppercase alphanumerics', async () => {
    const receipts: string[] = [];
    for (let i = 0; i < 5; i++) {
      const { checkoutRequestId } = await accepted(`25471200010${i}`);
      const res = await pin(checkoutRequestId, '4321');
      receipts.push(res.json.receipt);
    }
    for (const r of receipts) expect(r).toMatch(RECEIPT);
    expect(new Set(receipts).size).toBe(5);
  });
});

// ---------------------------------------------------------------- our own client

describe('our DarajaClient against the emulator', () => {
  test('when the service\'s client pushes to the sandbox number, then it is accepted and the success callback follows', async () => {
    const redis = new Redis(TEST_REDIS_URL);
    const keyPrefix = `emu-test-${process.pid}-${Date.now()}`;
    try {
      const client = new DarajaClient(
        {
          environment: 'sandbox',
          baseUrl,
          consumerKey: KEY,
          consumerSecret: SECRET,
          shortcode: SHORTCODE,
          passkey: PASSKEY,
          callbackUrl,
          callbackPathPrefix: '/mpesa/callback',
          callbackSecret: 'secret',
          transactionType: 'CustomerPayBillOnline',
          partyB: SHORTCODE,
          httpTimeoutMs: 2000,
        },
        new RedisKeyValueStore(redis),
        keyPrefix,
      );
      const res = await client.stkPush({ msisdn: APPROVES as Msisdn, amountKes: 2500, accountReference: 'GWCLIENT01', description: 'Buy gold' });
      expect(res.checkoutRequestId).toMatch(CHECKOUT_ID);
      const cb = await callbackFor(res.checkoutRequestId);
      expect(cb.body.Body.stkCallback.MerchantRequestID).toBe(res.merchantRequestId);
      expect(toStkResult(stkCallbackSchema.parse(cb.body)).paid?.amount).toBe('2500');
    } finally {
      await redis.del(`${keyPrefix}:daraja:token`, `${keyPrefix}:daraja:token:lock`);
      redis.disconnect();
      // The client's token replaced ours.
      token = await newToken();
    }
  });
});

// ---------------------------------------------------------------- B2C and Transaction Status

const B2C_PAID = '254708374149';
const B2C_INITIATOR_INVALID = '254700000101';
const B2C_INSUFFICIENT = '254700000102';
const B2C_TIMEOUT = '254700000103';
const B2C_DUPLICATED = '254700000104';
const B2C_LOST = '254700000105';
const B2C_SHORTCODE = '600996';
const AG_ID = /^AG_\d{8}_0000[0-9a-f]{16}$/;
const PLACEHOLDER_TX = /^[A-Z0-9]{3}0000000$/;

let payoutSeq = 0;
const newOriginatorId = () => `gw-emu-${process.pid}-${Date.now()}-${++payoutSeq}`;

function b2cBody(phone: string, overrides: Record<string, unknown> = {}) {
  return {
    OriginatorConversationID: newOriginatorId(),
    InitiatorName: 'testapi',
    SecurityCredential: Buffer.from('any credential').toString('base64'),
    CommandID: 'BusinessPayment',
    Amount: 1500,
    PartyA: B2C_SHORTCODE,
    PartyB: phone,
    Remarks: 'Gold sale payout',
    QueueTimeOutURL: asyncUrls.timeout,
    ResultURL: asyncUrls.result,
    Occassion: 'SELL-0001',
    ...overrides,
  };
}

function statusBody(overrides: Record<string, unknown> = {}) {
  return {
    Initiator: 'testapi',
    SecurityCredential: Buffer.from('any credential').toString('base64'),
    CommandID: 'TransactionStatusQuery',
    PartyA: B2C_SHORTCODE,
    IdentifierType: '4',
    ResultURL: asyncUrls.status,
    QueueTimeOutURL: asyncUrls.statusTimeout,
    Remarks: 'Payout status check',
    Occasion: 'check',
    ...overrides,
  };
}

const payB2c = (body: Record<string, unknown>, base = baseUrl, auth?: string) => callAt(base, '/mpesa/b2c/v3/paymentrequest', body, auth);
const queryStatus = (body: Record<string, unknown>, base = baseUrl, auth?: string) => callAt(base, '/mpesa/transactionstatus/v1/query', body, auth);

/** `call`, against any emulator instance (the strict one has its own base URL and token). */
async function callAt(base: string, path: string, body: unknown, auth?: string) {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: auth ?? `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json };
}

const asyncFor = (kind: string, originatorId: string) => asyncReceived.filter((r) => r.kind === kind && r.body?.Result?.OriginatorConversationID === originatorId);
const resultFor = (originatorId: string) => waitFor(() => asyncFor('result', originatorId)[0], `the B2C Result for ${originatorId}`);
const statusResultFor = (queryOriginatorId: string) => waitFor(() => asyncFor('status', queryOriginatorId)[0], `the status Result for ${queryOriginatorId}`);

/** Pays and expects Daraja's acceptance; returns our id and Daraja's ConversationID. */
async function acceptedPayout(phone: string, overrides: Record<string, unknown> = {}, base = baseUrl, auth?: string) {
  const body = b2cBody(phone, overrides);
  const res = await payB2c(body, base, auth);
  expect(res.status).toBe(200);
  expect(res.json).toEqual({ ConversationID: expect.stringMatching(AG_ID), OriginatorConversationID: body.OriginatorConversationID, ResponseCode: '0', ResponseDescription: 'Accept the service request successfully.' });
  return { originatorId: body.OriginatorConversationID as string, conversationId: res.json.ConversationID as string, sentAt: Date.now() };
}

/** Asks for a payout's status; returns the status Result, parsed by our own service's schema. */
async function statusOf(lookup: Record<string, unknown>, base = baseUrl, auth?: string, overrides: Record<string, unknown> = {}) {
  const res = await queryStatus(statusBody({ ...lookup, ...overrides }), base, auth);
  expect(res.status).toBe(200);
  expect(res.json).toEqual({ OriginatorConversationID: expect.stringMatching(/^\d{5}-\d{8}-1$/), ConversationID: expect.stringMatching(AG_ID), ResponseCode: '0', ResponseDescription: 'Accept the service request successfully.' });
  const cb = await statusResultFor(res.json.OriginatorConversationID);
  return { raw: cb.body, parsed: toTransactionStatusResult(transactionStatusResultSchema.parse(cb.body)), ack: res.json };
}

describe('B2C test numbers', () => {
  test('the published B2C table lists valid numbers our own validation accepts, distinct from the STK scripted ones', () => {
    const numbers = EMULATOR_B2C_TEST_NUMBERS.map((n) => n.msisdn);
    expect(numbers).toEqual(expect.arrayContaining([B2C_PAID, B2C_INITIATOR_INVALID, B2C_INSUFFICIENT, B2C_TIMEOUT, B2C_DUPLICATED, B2C_LOST]));
    expect(new Set(numbers).size).toBe(numbers.length);
    for (const n of numbers) expect(toMpesaMsisdn(n)).toBe(n);
    const stk = new Set(EMULATOR_TEST_NUMBERS.map((n) => n.msisdn));
    // Only the sandbox MSISDN is in both tables, and it succeeds in both.
    expect(numbers.filter((n) => stk.has(n))).toEqual([B2C_PAID]);
    for (const n of EMULATOR_B2C_TEST_NUMBERS) expect(n.behaviour.length).toBeGreaterThan(10);
  });
});

describe('B2C validation', () => {
  test.each<[string, Record<string, unknown>, string]>([
    ['OriginatorConversationID is missing', { OriginatorConversationID: undefined }, 'OriginatorConversationID'],
    ['OriginatorConversationID is empty', { OriginatorConversationID: '' }, 'OriginatorConversationID'],
    ['InitiatorName is empty', { InitiatorName: '' }, 'InitiatorName'],
    ['SecurityCredential is empty', { SecurityCredential: '' }, 'SecurityCredential'],
    ['SecurityCredential is not base64', { SecurityCredential: 'not base64!' }, 'SecurityCredential'],
    ['CommandID is an STK type', { CommandID: 'CustomerPayBillOnline' }, 'CommandID'],
    ['Amount is 9 (below 10)', { Amount: 9 }, 'Amount'],
    ['Amount is 250001', { Amount: 250_001 }, 'Amount'],
    ['Amount has decimals', { Amount: 10.5 }, 'Amount'],
    ['Amount is a decimal string', { Amount: '100.50' }, 'Amount'],
    ['PartyA is not a shortcode', { PartyA: 'b2c-1' }, 'PartyA'],
    ['PartyB is in 07 form', { PartyB: '0708374149' }, 'PartyB'],
    ['PartyB is in +254 form', { PartyB: '+254708374149' }, 'PartyB'],
    ['Remarks has 1 character', { Remarks: 'x' }, 'Remarks'],
    ['Remarks has 101 characters', { Remarks: 'r'.repeat(101) }, 'Remarks'],
    ['QueueTimeOutURL is not a URL', { QueueTimeOutURL: 'nope' }, 'QueueTimeOutURL'],
    ['ResultURL is not http(s)', { ResultURL: 'ftp://127.0.0.1/r' }, 'ResultURL'],
    ['Occassion has 101 characters', { Occassion: 'o'.repeat(101) }, 'Occassion'],
  ])('when %s, then 400 400.002.02 naming the field, and nothing is posted', async (_n, overrides, field) => {
    const body = b2cBody(B2C_PAID, overrides);
    const res = await payB2c(body);
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ requestId: REQUEST_ID, errorCode: '400.002.02', errorMessage: `Bad Request - Invalid ${field}` });
    await sleep(TIMINGS.callbackDelayMs * 3);
    if (typeof body.OriginatorConversationID === 'string') expect(asyncFor('result', body.OriginatorConversationID)).toEqual([]);
  });

  test('when a refused request\'s id is used again in a valid request, then it is accepted: only accepted ids are spent', async () => {
    const id = newOriginatorId();
    expect((await payB2c(b2cBody(B2C_PAID, { OriginatorConversationID: id, Amount: 5 }))).status).toBe(400);
    const ok = await payB2c(b2cBody(B2C_PAID, { OriginatorConversationID: id }));
    expect(ok.status).toBe(200);
    await resultFor(id);
  });

  test('when the Bearer token is missing or stale, then both B2C endpoints answer HTTP 404 404.001.03', async () => {
    for (const send of [payB2c, queryStatus]) {
      const res = await send(send === payB2c ? b2cBody(B2C_PAID) : statusBody({ OriginalConversationID: 'x' }), baseUrl, 'Bearer stale-token');
      expect(res.status).toBe(404);
      expect(res.json).toEqual({ requestId: REQUEST_ID, errorCode: '404.001.03', errorMessage: 'Invalid Access Token' });
    }
  });
});

describe('B2C outcomes', () => {
  test('when 254708374149 is paid, then one Result in Daraja\'s shape arrives and our schema reads it', async () => {
    const { originatorId, conversationId } = await acceptedPayout(B2C_PAID, { Amount: '2500' });
    const cb = await resultFor(originatorId);
    expect(cb.body).toEqual({
      Result: {
        ResultType: 0,
        ResultCode: 0,
        ResultDesc: 'The service request is processed successfully.',
        OriginatorConversationID: originatorId,
        ConversationID: conversationId,
        TransactionID: expect.stringMatching(RECEIPT),
        ResultParameters: {
          ResultParameter: [
            { Key: 'TransactionAmount', Value: 2500 },
            { Key: 'TransactionReceipt', Value: cb.body.Result.TransactionID },
            { Key: 'B2CRecipientIsRegisteredCustomer', Value: 'Y' },
            { Key: 'B2CChargesPaidAccountAvailableFunds', Value: 0 },
            { Key: 'ReceiverPartyPublicName', Value: '2547******49 - JOHN DOE' },
            { Key: 'TransactionCompletedDateTime', Value: expect.stringMatching(/^\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}:\d{2}$/) },
            { Key: 'B2CUtilityAccountAvailableFunds', Value: expect.any(Number) },
            { Key: 'B2CWorkingAccountAvailableFunds', Value: 0 },
          ],
        },
        ReferenceData: { ReferenceItem: { Key: 'QueueTimeoutURL', Value: 'https://internalsandbox.safaricom.co.ke/mpesa/b2cresults/v1/submit' } },
      },
    });
    const parsed = toB2cResult(b2cResultSchema.parse(cb.body));
    expect(parsed).toMatchObject({ originatorConversationId: originatorId, conversationId, resultCode: 0, amountKes: 2500, receipt: cb.body.Result.TransactionID });
    // TransactionCompletedDateTime is EAT wall-clock time, within a few seconds of now.
    expect(Math.abs(parseDarajaDateTime(parsed.completedAt!)!.getTime() - Date.now())).toBeLessThan(5000);
    await sleep(60);
    expect(asyncFor('result', originatorId)).toHaveLength(1);
    expect(asyncFor('timeout', originatorId)).toHaveLength(0);
  });

  test('when an unlisted number is paid, then it succeeds too, and receipts never repeat', async () => {
    const a = await acceptedPayout('254712000500', { Amount: 10 });
    const b = await acceptedPayout('254712000501', { Amount: 250_000 });
    const [ra, rb] = [await resultFor(a.originatorId), await resultFor(b.originatorId)];
    expect([ra.body.Result.ResultCode, rb.body.Result.ResultCode]).toEqual([0, 0]);
    expect(ra.body.Result.TransactionID).not.toBe(rb.body.Result.TransactionID);
    // The utility account pays for each: its balance goes down by exactly the amount.
    expect(ra.body.Result.ResultParameters.ResultParameter[6].Value - rb.body.Result.ResultParameters.ResultParameter[6].Value).toBe(250_000);
  });

  test('when an OriginatorConversationID is reused, then HTTP 500 500.002.1001 Duplicate OriginatorConversationID and no second Result', async () => {
    const body = b2cBody(B2C_PAID);
    expect((await payB2c(body)).status).toBe(200);
    for (const retry of [body, { ...body, Amount: 999, PartyB: '254712000502' }]) {
      const again = await payB2c(retry);
      expect(again.status).toBe(500);
      expect(again.json).toEqual({ requestId: REQUEST_ID, errorCode: '500.002.1001', errorMessage: 'Duplicate OriginatorConversationID' });
    }
    await resultFor(body.OriginatorConversationID);
    await sleep(60);
    expect(asyncFor('result', body.OriginatorConversationID)).toHaveLength(1);
  });

  test.each<[string, string, number, string]>([
    ['the initiator is invalid', B2C_INITIATOR_INVALID, 2001, 'The initiator information is invalid.'],
    ['the utility account is short', B2C_INSUFFICIENT, 1, 'The balance is insufficient for the transaction.'],
  ])('when %s (%s), then a Result with ResultCode %i, a placeholder TransactionID and no ResultParameters', async (_n, phone, code, desc) => {
    const { originatorId, conversationId } = await acceptedPayout(phone);
    const cb = await resultFor(originatorId);
    expect(cb.body).toEqual({
      Result: {
        ResultType: 0,
        ResultCode: code,
        ResultDesc: desc,
        OriginatorConversationID: originatorId,
        ConversationID: conversationId,
        TransactionID: expect.stringMatching(PLACEHOLDER_TX),
        ReferenceData: { ReferenceItem: { Key: 'QueueTimeoutURL', Value: expect.any(String) } },
      },
    });
    expect(toB2cResult(b2cResultSchema.parse(cb.body))).toMatchObject({ resultCode: code, resultDesc: desc });
    // A failed payout never became an M-Pesa transaction: Transaction Status does not find it.
    const status = await statusOf({ OriginalConversationID: originatorId });
    expect(status.parsed).toMatchObject({ resultCode: 2032, resultDesc: 'The transaction receipt number does not exist.' });
    expect(status.parsed.receipt).toBeUndefined();
  });

  test('when the payout TIMES OUT in the queue, then no Result, a queue-timeout body instead, and Transaction Status reports it Completed', async () => {
    const { originatorId, conversationId, sentAt } = await acceptedPayout(B2C_TIMEOUT, { Amount: 4200 });
    const timeout = await waitFor(() => asyncFor('timeout', originatorId)[0], 'the queue timeout');
    expect(timeout.at - sentAt).toBeGreaterThanOrEqual(TIMINGS.callbackDelayMs - 5);
    expect(toQueueTimeout(queueTimeoutSchema.parse(timeout.body))).toEqual({ originatorConversationId: originatorId, conversationId, resultDesc: expect.any(String) });
    await sleep(60);
    expect(asyncFor('result', originatorId)).toEqual([]);

    const { parsed, raw, ack } = await statusOf({ OriginalConversationID: originatorId }, baseUrl, undefined, { Occasion: 'reconcile' });
    expect(parsed).toEqual({
      queryOriginatorConversationId: ack.OriginatorConversationID,
      queryConversationId: ack.ConversationID,
      resultCode: 0,
      resultCodeText: '0',
      resultDesc: 'The service request is processed successfully.',
      originatorConversationId: originatorId,
      conversationId,
      receipt: expect.stringMatching(RECEIPT),
      transactionStatus: 'Completed',
      amount: '4200',
      amountKes: 4200,
      finalisedTime: expect.stringMatching(/^\d{14}$/),
      creditPartyName: '2547******03 - JOHN DOE',
    });
    expect(raw.Result.ReferenceData).toEqual({ ReferenceItem: { Key: 'Occasion', Value: 'reconcile' } });
    // Nothing ever goes to the status query's own QueueTimeOutURL.
    expect(asyncReceived.filter((r) => r.kind === 'status-timeout')).toEqual([]);
  });

  test('when the Result is DUPLICATED, then the identical success Result arrives exactly twice', async () => {
    const { originatorId } = await acceptedPayout(B2C_DUPLICATED);
    await waitFor(() => asyncFor('result', originatorId).length === 2 || undefined, 'two Results');
    await sleep(60);
    const both = asyncFor('result', originatorId);
    expect(both).toHaveLength(2);
    expect(both[1]!.body).toEqual(both[0]!.body);
    expect(both[0]!.body.Result.ResultCode).toBe(0);
  });

  test('when the Result is LOST, then nothing is posted anywhere, and Transaction Status by receipt or by id finds the payout', async () => {
    const { originatorId } = await acceptedPayout(B2C_LOST, { Amount: 777 });
    await sleep(TIMINGS.callbackDelayMs * 5);
    expect(asyncReceived.filter((r) => r.body?.Result?.OriginatorConversationID === originatorId)).toEqual([]);
    const byId = await statusOf({ OriginalConversationID: originatorId });
    expect(byId.parsed).toMatchObject({ resultCode: 0, transactionStatus: 'Completed', originatorConversationId: originatorId, amountKes: 777 });
    const byReceipt = await statusOf({ TransactionID: byId.parsed.receipt });
    expect(byReceipt.parsed).toMatchObject({ resultCode: 0, originatorConversationId: originatorId, receipt: byId.parsed.receipt });
  });
});

describe('Transaction Status', () => {
  test('when the id is unknown, then the Result says 2032 and carries no parameters', async () => {
    const { parsed, raw } = await statusOf({ OriginalConversationID: 'never-sent-id' });
    expect(parsed).toMatchObject({ resultCode: 2032, resultDesc: 'The transaction receipt number does not exist.' });
    expect(raw.Result.ResultParameters).toBeUndefined();
  });

  test.each<[string, Record<string, unknown>, string]>([
    ['neither TransactionID nor OriginalConversationID is given', {}, 'TransactionID'],
    ['both are blank', { TransactionID: ' ', OriginalConversationID: '' }, 'TransactionID'],
    ['CommandID is not TransactionStatusQuery', { OriginalConversationID: 'x', CommandID: 'BusinessPayment' }, 'CommandID'],
    ['IdentifierType is 3', { OriginalConversationID: 'x', IdentifierType: '3' }, 'IdentifierType'],
    ['ResultURL is missing', { OriginalConversationID: 'x', ResultURL: undefined }, 'ResultURL'],
    ['Remarks is empty', { OriginalConversationID: 'x', Remarks: '' }, 'Remarks'],
  ])('when %s, then 400 400.002.02 naming the field', async (_n, overrides, field) => {
    const res = await queryStatus(statusBody(overrides));
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ requestId: REQUEST_ID, errorCode: '400.002.02', errorMessage: `Bad Request - Invalid ${field}` });
  });

  test('when IdentifierType comes as the number 4, then it is accepted like "4"', async () => {
    const { parsed } = await statusOf({ OriginalConversationID: 'never-sent-2' }, baseUrl, undefined, { IdentifierType: 4 });
    expect(parsed.resultCode).toBe(2032);
  });
});

// ---------------------------------------------------------------- a strict emulator: initiator, PartyA, balance

describe('B2C with initiator checks, a fixed PartyA and a small utility account', () => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const INITIATOR = 'goldwallet_api';
  const PASSWORD = 'Initiator#2026';
  let strict: DarajaEmulator;
  let strictServer: Server;
  let strictUrl: string;
  let strictToken: string;

  beforeAll(async () => {
    const opts: DarajaEmulatorOptions = {
      consumerKey: KEY,
      consumerSecret: SECRET,
      shortcode: SHORTCODE,
      passkey: PASSKEY,
      log,
      ...TIMINGS,
      b2cShortcode: B2C_SHORTCODE,
      initiatorName: INITIATOR,
      initiatorPassword: PASSWORD,
      initiatorPrivateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      b2cUtilityBalanceKes: 1000,
    };
    strict = createDarajaEmulator(opts);
    const app = express();
    app.use(strict.router);
    const started = await listen(app);
    strictServer = started.server;
    strictUrl = started.url;
    const res = await fetch(`${strictUrl}/oauth/v1/generate?grant_type=client_credentials`, { headers: { authorization: basic(KEY, SECRET) } });
    strictToken = ((await res.json()) as { access_token: string }).access_token;
  });

  afterAll(async () => {
    strict.close();
    await new Promise((r) => strictServer.close(r));
  });

  const auth = () => `Bearer ${strictToken}`;
  const goodInitiator = () => ({ InitiatorName: INITIATOR, SecurityCredential: securityCredential(PASSWORD, publicPem) });

  test('when PartyA is not the configured B2C shortcode, then 400 Invalid PartyA (for B2C and for Transaction Status)', async () => {
    const res = await payB2c(b2cBody(B2C_PAID, { ...goodInitiator(), PartyA: '600000' }), strictUrl, auth());
    expect(res.status).toBe(400);
    expect(res.json.errorMessage).toBe('Bad Request - Invalid PartyA');
    const status = await queryStatus(statusBody({ OriginalConversationID: 'x', PartyA: '600000' }), strictUrl, auth());
    expect(status.json.errorMessage).toBe('Bad Request - Invalid PartyA');
  });

  test('when the initiator name is wrong, then the request is accepted and answered with a 2001 Result', async () => {
    const { originatorId } = await acceptedPayout(B2C_PAID, { ...goodInitiator(), InitiatorName: 'someone_else' }, strictUrl, auth());
    expect((await resultFor(originatorId)).body.Result).toMatchObject({ ResultCode: 2001, ResultDesc: 'The initiator information is invalid.' });
  });

  test('when the SecurityCredential hides the wrong password, or is not even a ciphertext, then a 2001 Result', async () => {
    const wrongPassword = await acceptedPayout(B2C_PAID, { InitiatorName: INITIATOR, SecurityCredential: securityCredential('not-the-password', publicPem) }, strictUrl, auth());
    expect((await resultFor(wrongPassword.originatorId)).body.Result.ResultCode).toBe(2001);
    const notCiphertext = await acceptedPayout(B2C_PAID, { InitiatorName: INITIATOR, SecurityCredential: Buffer.from('plain').toString('base64') }, strictUrl, auth());
    expect((await resultFor(notCiphertext.originatorId)).body.Result.ResultCode).toBe(2001);
  });

  test('when the initiator is right, then paid while the utility account lasts, then ResultCode 1; a status query with a bad initiator gets 2001', async () => {
    const first = await acceptedPayout(B2C_PAID, { ...goodInitiator(), Amount: 600 }, strictUrl, auth());
    const firstResult = (await resultFor(first.originatorId)).body.Result;
    expect(firstResult.ResultCode).toBe(0);
    expect(firstResult.ResultParameters.ResultParameter).toContainEqual({ Key: 'B2CUtilityAccountAvailableFunds', Value: 400 });
    const second = await acceptedPayout('254712000600', { ...goodInitiator(), Amount: 500 }, strictUrl, auth());
    expect((await resultFor(second.originatorId)).body.Result).toMatchObject({ ResultCode: 1, ResultDesc: 'The balance is insufficient for the transaction.' });

    const refused = await statusOf({ OriginalConversationID: first.originatorId }, strictUrl, auth(), { Initiator: INITIATOR, SecurityCredential: securityCredential('wrong', publicPem) });
    expect(refused.parsed).toMatchObject({ resultCode: 2001 });
    const found = await statusOf({ OriginalConversationID: first.originatorId }, strictUrl, auth(), { Initiator: INITIATOR, SecurityCredential: securityCredential(PASSWORD, publicPem) });
    expect(found.parsed).toMatchObject({ resultCode: 0, transactionStatus: 'Completed', amountKes: 600 });
  });

  test('when our DarajaClient pays, retries, and reconciles a timed-out payout, then every step reads back through our own schemas', async () => {
    const redis = new Redis(TEST_REDIS_URL);
    const keyPrefix = `emu-b2c-${process.pid}-${Date.now()}`;
    try {
      const client = new DarajaClient(
        {
          environment: 'sandbox',
          baseUrl: strictUrl,
          consumerKey: KEY,
          consumerSecret: SECRET,
          shortcode: SHORTCODE,
          passkey: PASSKEY,
          callbackUrl,
          callbackPathPrefix: '/mpesa/callback',
          callbackSecret: 'secret',
          transactionType: 'CustomerPayBillOnline',
          partyB: SHORTCODE,
          httpTimeoutMs: 2000,
        },
        new RedisKeyValueStore(redis),
        keyPrefix,
        undefined,
        {
          shortcode: B2C_SHORTCODE,
          initiatorName: INITIATOR,
          securityCredential: securityCredential(PASSWORD, publicPem),
          resultUrl: asyncUrls.result,
          timeoutUrl: asyncUrls.timeout,
          statusResultUrl: asyncUrls.status,
        },
      );

      // A payout, its Result, and a retry with the same id that must not count as a failure.
      const request = { originatorConversationId: newOriginatorId(), msisdn: '254712000700' as Msisdn, amountKes: 100, remarks: 'Gold sale payout', occasion: 'SELL-0700' };
      const sent = await client.b2cPayment(request);
      expect(sent).toEqual({ duplicate: false, conversationId: expect.stringMatching(AG_ID), originatorConversationId: request.originatorConversationId });
      const result = toB2cResult(b2cResultSchema.parse((await resultFor(request.originatorConversationId)).body));
      expect(result).toMatchObject({ resultCode: 0, amountKes: 100, conversationId: sent.duplicate ? undefined : sent.conversationId, receiverName: '2547******00 - JOHN DOE' });
      await expect(client.b2cPayment(request)).resolves.toEqual({ duplicate: true, originatorConversationId: request.originatorConversationId });

      // A payout whose Result never comes: the queue timeout, then Transaction Status tells the truth.
      const lostId = newOriginatorId();
      await client.b2cPayment({ originatorConversationId: lostId, msisdn: B2C_TIMEOUT as Msisdn, amountKes: 50, remarks: 'Gold sale payout' });
      const timeout = toQueueTimeout(queueTimeoutSchema.parse((await waitFor(() => asyncFor('timeout', lostId)[0], 'the queue timeout')).body));
      expect(timeout.originatorConversationId).toBe(lostId);
      const ack = await client.transactionStatus({ originatorConversationId: lostId });
      expect(ack).toEqual({ state: 'accepted', queryConversationId: expect.stringMatching(AG_ID), queryOriginatorConversationId: expect.any(String) });
      const status = toTransactionStatusResult(transactionStatusResultSchema.parse((await statusResultFor(ack.queryOriginatorConversationId!)).body));
      expect(status).toMatchObject({ resultCode: 0, transactionStatus: 'Completed', originatorConversationId: lostId, amountKes: 50, receipt: expect.stringMatching(RECEIPT) });

      // STK Query through the client: pending while the prompt is open, final once the payer cancels.
      const push = await client.stkPush({ msisdn: '254712000701' as Msisdn, amountKes: 300, accountReference: 'GWQUERY01', description: 'Buy gold' });
      await expect(client.stkQuery(push.checkoutRequestId)).resolves.toEqual({ state: 'pending' });
      const cancelled = await fetch(`${strictUrl}/prompts/${push.checkoutRequestId}/cancel`, { method: 'POST' });
      expect(cancelled.status).toBe(200);
      await expect(client.stkQuery(push.checkoutRequestId)).resolves.toEqual({ state: 'final', resultCode: 1032, resultCodeText: '1032', resultDesc: 'Request cancelled by user' });
    } finally {
      await redis.del(`${keyPrefix}:daraja:token`, `${keyPrefix}:daraja:token:lock`);
      redis.disconnect();
    }
  });

  test('when close() is called, then scheduled B2C Results are never posted', async () => {
    const other = createDarajaEmulator({ consumerKey: KEY, consumerSecret: SECRET, shortcode: SHORTCODE, passkey: PASSKEY, log, ...TIMINGS });
    const app = express();
    app.use(other.router);
    const { server, url } = await listen(app);
    try {
      const tokenRes = await fetch(`${url}/oauth/v1/generate?grant_type=client_credentials`, { headers: { authorization: basic(KEY, SECRET) } });
      const otherToken = ((await tokenRes.json()) as { access_token: string }).access_token;
      const { originatorId } = await acceptedPayout(B2C_PAID, {}, url, `Bearer ${otherToken}`);
      other.close();
      await sleep(TIMINGS.callbackDelayMs * 5);
      expect(asyncFor('result', originatorId)).toEqual([]);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
