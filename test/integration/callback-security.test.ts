import nock from 'nock';
import { en } from '../../src/i18n/en';
import { B2C_RESULT_PATH, B2C_STATUS_PATH, B2C_TIMEOUT_PATH, b2cTestEnv } from '../support/b2c-env';
import { CALLBACK_PATH, DELIVERY_REPORTS_PATH, USSD_EVENTS_PATH, USSD_PATH, expectBooksBalanced, fundPoolGrams, startTestService, type TestService } from '../support/harness';
import { newSessionId, postCallback } from '../support/http';
import { buyUntilPushed, orderStatus } from '../support/flows';
import { mockAtSmsAccepted, stkCallbackBody } from '../support/vendors';

/** The service's log lines, parsed. */
function logCapture() {
  const lines: string[] = [];
  return { lines, destination: { write: (line: string) => void lines.push(line) }, entries: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const callbacks = async (svc: TestService) => Number((await svc.db('mpesa_callbacks').count({ n: '*' }))[0]!.n);

const success = (checkoutRequestId: string) =>
  stkCallbackBody({ checkoutRequestId, resultCode: 0, amount: 500, receipt: `S${Date.now().toString(36).toUpperCase()}`, phone: 254712345678 });

async function postFrom(svc: TestService, body: unknown, forwardedFor?: string, path = CALLBACK_PATH) {
  const res = await fetch(`${svc.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(forwardedFor ? { 'x-forwarded-for': forwardedFor } : {}) },
    body: JSON.stringify(body),
  });
  return { status: res.status, text: await res.text() };
}

describe('the callback IP allowlist, with no proxy trusted', () => {
  let svc: TestService;
  const log = logCapture();
  beforeAll(async () => {
    // 192.0.2.0/24 (TEST-NET-1) stands for Safaricom; the test itself calls from 127.0.0.1.
    svc = await startTestService({ MPESA_CALLBACK_IP_ALLOWLIST: '192.0.2.0/24', LOG_LEVEL: 'info' }, { logDestination: log.destination });
    await fundPoolGrams(svc.db, 10);
  });
  afterEach(async () => {
    await expectBooksBalanced(svc.db);
    nock.cleanAll();
  });
  afterAll(() => svc.close());

  test('when a callback comes from an address outside the allowlist, then it is refused with 403, nothing is recorded, and the refusal is logged without the body or the secret', async () => {
    const { order, checkoutRequestId } = await buyUntilPushed(svc);
    const before = await callbacks(svc);
    log.lines.length = 0;

    const res = await postFrom(svc, success(checkoutRequestId));
    expect(res.status).toBe(403);
    expect(await callbacks(svc)).toBe(before);
    expect(await orderStatus(svc, order.id)).toBe('stk_sent');

    const refusals = log.entries().filter((e) => e.msg === 'callback refused: address not in MPESA_CALLBACK_IP_ALLOWLIST');
    expect(refusals).toEqual([expect.objectContaining({ level: 40, ip: '127.0.0.1', path: '/mpesa/callback/***' })]);
    const all = log.lines.join('');
    expect(all).not.toContain(svc.config.mpesa.callbackSecret);
    expect(all).not.toContain(checkoutRequestId);
    expect(all).not.toContain('254712345678');
  });

  test('when a caller outside the allowlist forges X-Forwarded-For with an allowed address, then it is still refused (no proxy is trusted)', async () => {
    const { order, checkoutRequestId } = await buyUntilPushed(svc, { phoneNumber: '+254712345670' });
    const res = await postFrom(svc, stkCallbackBody({ checkoutRequestId, resultCode: 1032 }), '192.0.2.10');
    expect(res.status).toBe(403);
    expect(await orderStatus(svc, order.id)).toBe('stk_sent');
  });

  test('when the address is refused, then the answer is 403 even before the secret is looked at, and with a wrong secret too', async () => {
    expect((await postFrom(svc, {}, undefined, '/mpesa/callback/wrong-secret')).status).toBe(403);
  });
});

describe('the callback IP allowlist on the B2C routes', () => {
  const b2cEnv = b2cTestEnv();
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ ...b2cEnv, MPESA_CALLBACK_IP_ALLOWLIST: '192.0.2.0/24', TRUST_PROXY: 'loopback' });
  });
  afterAll(() => svc.close());

  const result = { Result: { ResultType: 0, ResultCode: 2001, ResultDesc: 'The initiator information is invalid.', OriginatorConversationID: 'sec-unknown-1', ConversationID: 'AG_sec_1', TransactionID: 'SECTX00001' } };

  test.each([B2C_RESULT_PATH, B2C_TIMEOUT_PATH, B2C_STATUS_PATH])('when %s is called from outside the allowlist, then 403 and nothing is recorded; from inside, it is answered', async (path) => {
    const before = await callbacks(svc);
    expect((await postFrom(svc, result, '203.0.113.5', path)).status).toBe(403);
    expect(await callbacks(svc)).toBe(before);
    expect((await postFrom(svc, result, '192.0.2.10', path)).status).toBe(200);
    expect((await postFrom(svc, result, '192.0.2.10', path.replace(/[^/]+$/, 'wrong-secret'))).status).toBe(404);
  });
});

describe('the callback IP allowlist behind a trusted proxy (TRUST_PROXY)', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ MPESA_CALLBACK_IP_ALLOWLIST: '192.0.2.0/24, 198.51.100.7', TRUST_PROXY: 'loopback' });
    await fundPoolGrams(svc.db, 10);
  });
  afterEach(async () => {
    await expectBooksBalanced(svc.db);
    nock.cleanAll();
  });
  afterAll(() => svc.close());

  test('when the trusted proxy forwards a callback from an allowed address, then it is settled', async () => {
    const { order, checkoutRequestId } = await buyUntilPushed(svc);
    mockAtSmsAccepted([]);
    const res = await postFrom(svc, success(checkoutRequestId), '192.0.2.10');
    expect(res.status).toBe(200);
    expect(await orderStatus(svc, order.id)).toBe('paid');
  });

  test('when the trusted proxy forwards a callback from any other address, then it is refused with 403 and nothing changes', async () => {
    const { order, checkoutRequestId } = await buyUntilPushed(svc, { phoneNumber: '+254712345670' });
    for (const from of ['203.0.113.5', '198.51.100.8', '192.0.2.10, 203.0.113.5']) {
      expect((await postFrom(svc, stkCallbackBody({ checkoutRequestId, resultCode: 1032 }), from)).status).toBe(403);
    }
    expect((await postFrom(svc, stkCallbackBody({ checkoutRequestId, resultCode: 1032 }))).status).toBe(403); // the proxy itself is not Safaricom
    expect(await orderStatus(svc, order.id)).toBe('stk_sent');
    mockAtSmsAccepted([]);
    expect((await postFrom(svc, stkCallbackBody({ checkoutRequestId, resultCode: 1032 }), '198.51.100.7')).status).toBe(200);
    expect(await orderStatus(svc, order.id)).toBe('failed');
  });

  test('when an allowed address uses a wrong secret, then it still gets 404', async () => {
    expect((await postFrom(svc, {}, '192.0.2.10', '/mpesa/callback/wrong-secret')).status).toBe(404);
  });
});

describe('request body caps and unstorable characters', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService();
  });
  afterEach(async () => {
    await expectBooksBalanced(svc.db);
    nock.cleanAll();
  });
  afterAll(() => svc.close());

  // 20 kB: above each cap, below express's 100 kB default, so removing a cap makes these fail.
  const padding = 'x'.repeat(20 * 1024);

  test('when an STK callback body is larger than 16 kB, then it is refused with 413 before it is parsed and nothing is recorded', async () => {
    const before = await callbacks(svc);
    const body = { ...stkCallbackBody({ checkoutRequestId: 'ws_CO_padded', resultCode: 1032 }), padding };
    const res = await postCallback(svc.url, body);
    expect(res.status).toBe(413);
    expect(await callbacks(svc)).toBe(before);
    // The same callback at its real size is accepted (as an orphan): only the size was the problem.
    expect((await postCallback(svc.url, stkCallbackBody({ checkoutRequestId: 'ws_CO_padded', resultCode: 1032 }))).status).toBe(200);
  });

  test('when a USSD body is larger than 8 kB, then it still answers 200 END and creates nothing', async () => {
    const customers = Number((await svc.db('customers').count({ n: '*' }))[0]!.n);
    const form = new URLSearchParams({ sessionId: newSessionId(), serviceCode: '*384*1#', phoneNumber: '+254719000001', networkCode: '63902', text: '', padding });
    const res = await fetch(`${svc.url}${USSD_PATH}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await res.text()).toBe(`END ${en.ussd.invalidRequest}`);
    expect(Number((await svc.db('customers').count({ n: '*' }))[0]!.n)).toBe(customers);
  });

  test('when a callback carries a NUL character (which Postgres cannot store), then it is refused with 400 rather than failing with 503 at every retry', async () => {
    const before = await callbacks(svc);
    const res = await postCallback(svc.url, stkCallbackBody({ checkoutRequestId: 'ws_CO_nul', resultCode: 1032, resultDesc: 'cancelled \u0000 by user' }));
    expect(res.status).toBe(400);
    expect(await callbacks(svc)).toBe(before);
  });

  test('when a callback carries half a surrogate pair (which jsonb cannot store either), then it is refused with 400, while a whole pair is accepted', async () => {
    const before = await callbacks(svc);
    for (const half of ['\ud83d', '\ude00']) {
      const res = await postCallback(svc.url, stkCallbackBody({ checkoutRequestId: 'ws_CO_half', resultCode: 1032, resultDesc: `cancelled ${half} by user` }));
      expect(res.status).toBe(400);
    }
    expect(await callbacks(svc)).toBe(before);
    const whole = JSON.stringify(stkCallbackBody({ checkoutRequestId: 'ws_CO_whole', resultCode: 1032, resultDesc: 'cancelled @ by user' })).replace('@', '\\ud83d\\ude00');
    expect((await postCallback(svc.url, whole)).status).toBe(200);
    expect(await callbacks(svc)).toBe(before + 1);
  });

  test('when an SMS delivery report carries control characters, then it is refused with 400', async () => {
    for (const id of ['ATXid_\u0000', 'ATXid_\u0007x']) {
      const res = await fetch(`${svc.url}${DELIVERY_REPORTS_PATH}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ id, status: 'Success' }) });
      expect(res.status).toBe(400);
    }
  });

  test('when a USSD end-of-session notification carries a NUL character, then it is refused with 400, not a 500', async () => {
    for (const fields of [{ sessionId: 'ATUid_\u0000' }, { sessionId: 'ATUid_nul', input: '1*\u0000' }, { sessionId: 'ATUid_nul2', errorMessage: 'x\u0000' }] as Array<Record<string, string>>) {
      const res = await fetch(`${svc.url}${USSD_EVENTS_PATH}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ status: 'Success', ...fields }) });
      expect(res.status).toBe(400);
    }
  });

  test('when an SMS delivery report is larger than 8 kB, then it is refused with 413', async () => {
    const form = new URLSearchParams({ id: 'ATXid_unknown', status: 'Success', padding });
    const res = await fetch(`${svc.url}${DELIVERY_REPORTS_PATH}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form });
    expect(res.status).toBe(413);
  });
});
