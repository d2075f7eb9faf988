import nock from 'nock';
import { queueSms } from '../../src/notifications/queue-sms';
import { AT_SANDBOX_HOST, DELIVERY_REPORTS_PATH, startTestService, waitFor, type TestService } from '../support/harness';
import { mockAtSmsAccepted, type CapturedSms } from '../support/vendors';

/** SMS go out through the outbox: queued with the business change, delivered by a job with retries. */
async function sendOne(svc: TestService, key: string, msisdn = '254712345678') {
  const s = svc.running.services;
  const outboxId = await svc.db.transaction((trx) => queueSms(trx, s.outbox, { customerId: null, msisdn, body: `hello ${key}`, purpose: 'test', dedupeKey: key }));
  await s.outbox.relaySoon([outboxId]);
  return () => svc.db('sms_messages').where({ dedupe_key: key }).first();
}

describe('SMS delivery through the Africa\'s Talking SDK', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ JOB_ATTEMPTS: '3', JOB_BACKOFF_MS: '30' });
  });
  afterEach(() => nock.cleanAll());
  afterAll(() => svc.close());

  test('when Africa\'s Talking fails with 5xx and a gateway error, then the SMS is retried and sent once', async () => {
    const sms: CapturedSms[] = [];
    const failing = nock(AT_SANDBOX_HOST)
      .post('/version1/messaging').reply(502, 'Bad Gateway')
      .post('/version1/messaging').reply(201, { SMSMessageData: { Message: 'Sent to 0/1', Recipients: [{ statusCode: 500, number: '+254712345678', status: 'InternalServerError', cost: '0', messageId: 'None' }] } });
    mockAtSmsAccepted(sms);
    const row = await sendOne(svc, 'retry-1');
    const sent = await waitFor(async () => (await row())?.status === 'sent' && row(), 'the SMS to be sent');
    expect(failing.isDone()).toBe(true);
    expect(sent).toMatchObject({ attempts: 3, at_status_code: 101, at_status: 'Success', at_cost: 'KES 0.8000', last_error: null });
    expect(sms).toHaveLength(1);
    expect(sms[0]!.form.get('username')).toBe('sandbox');
    expect(sms[0]!.form.get('message')).toBe('hello retry-1');
  });

  test('when the number is refused (403 InvalidPhoneNumber), then it fails at once without retrying', async () => {
    const scope = nock(AT_SANDBOX_HOST).post('/version1/messaging').reply(201, { SMSMessageData: { Message: 'Sent to 0/1', Recipients: [{ statusCode: 403, number: '+254712345678', status: 'InvalidPhoneNumber', cost: '0', messageId: 'None' }] } });
    const extra = nock(AT_SANDBOX_HOST).post('/version1/messaging').reply(201, {});
    const row = await sendOne(svc, 'permanent-1');
    const failed = await waitFor(async () => (await row())?.status === 'failed' && row(), 'the SMS to fail');
    expect(scope.isDone()).toBe(true);
    expect(extra.isDone()).toBe(false);
    expect(failed).toMatchObject({ attempts: 1, at_message_id: null });
    expect(failed.last_error).toMatch(/InvalidPhoneNumber/);
  });

  test('when the credentials are wrong (401 plain text) on every attempt, then it is marked failed after the last attempt', async () => {
    const scope = nock(AT_SANDBOX_HOST).post('/version1/messaging').times(3).reply(401, 'The supplied authentication is invalid');
    const row = await sendOne(svc, 'unauthorised-1');
    const failed = await waitFor(async () => (await row())?.status === 'failed' && row(), 'the SMS to fail');
    expect(scope.isDone()).toBe(true);
    expect(failed.attempts).toBe(3);
    expect(failed.last_error).toMatch(/401/);
  });

  test('when the same message key is queued twice, then it is sent once', async () => {
    const sms: CapturedSms[] = [];
    mockAtSmsAccepted(sms, AT_SANDBOX_HOST, 2);
    const row = await sendOne(svc, 'dedupe-1');
    await sendOne(svc, 'dedupe-1');
    await waitFor(async () => (await row())?.status === 'sent', 'the SMS to be sent');
    await new Promise((r) => setTimeout(r, 200));
    expect(sms).toHaveLength(1);
  });
});

describe('SMS delivery with AT_API_URL', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ AT_API_URL: 'https://at-gateway.example.test', AT_USERNAME: 'goldco', AT_SENDER_ID: 'GOLDCO' });
  });
  afterAll(() => svc.close());

  test('when AT_API_URL is set, then the same form fields and apiKey header go to that host and 201 counts as sent', async () => {
    const sms: CapturedSms[] = [];
    mockAtSmsAccepted(sms, 'https://at-gateway.example.test');
    const row = await sendOne(svc, 'custom-host-1');
    await waitFor(async () => (await row())?.status === 'sent', 'the SMS to be sent');
    const form = sms[0]!.form;
    expect(Object.fromEntries(form)).toEqual({ username: 'goldco', to: '+254712345678', message: 'hello custom-host-1', from: 'GOLDCO', bulkSMSMode: '1' });
    expect(sms[0]!.headers.apikey).toBe('test-at-key');
    expect(sms[0]!.headers.accept).toBe('application/json');
  });

  test('when that host answers 200 instead of 201, then it is not counted as sent', async () => {
    nock('https://at-gateway.example.test').post('/version1/messaging').times(4).reply(200, { SMSMessageData: { Recipients: [] } });
    const row = await sendOne(svc, 'custom-host-200');
    await waitFor(async () => (await row())?.attempts >= 1, 'an attempt');
    expect((await row()).status).not.toBe('sent');
  });
});

/** Real answers other people captured from Africa's Talking (test/fixtures/realworld/at-sms.json, a copy of shared/fixtures/realworld). */
const AT_SMS_FIXTURES: Array<{ payload: unknown }> = require('../fixtures/realworld/at-sms.json');
const recorded = (i: number) => {
  const p = AT_SMS_FIXTURES[i]!.payload as { statusCode?: number; data?: string; SMSMessageData?: unknown };
  return typeof p.data === 'string' ? { status: p.statusCode!, body: JSON.parse(p.data) } : { status: 201, body: p };
};

describe('what Africa\'s Talking says of each recipient, from real answers', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ JOB_ATTEMPTS: '3', JOB_BACKOFF_MS: '30' });
  });
  afterEach(() => nock.cleanAll());
  afterAll(() => svc.close());

  const alerts = () => svc.db('ops_alerts').where({ kind: 'sms_account_problem' });

  test.each([
    ['InvalidSenderId with HTTP 201 and no recipient', () => recorded(3), null, 'InvalidSenderId', true],
    ['406 UserInBlacklist (messageId "None")', () => recorded(8), 406, 'UserInBlacklist', false],
    ['HTTP 409 DoNotDisturbRejection', () => ({ ...recorded(10), status: 409 }), 409, 'DoNotDisturbRejection', false],
    ['405 InsufficientBalance', () => ({ status: 201, body: { SMSMessageData: { Message: 'Sent to 0/1 Total Cost: 0', Recipients: [{ statusCode: 405, number: '+254712345678', status: 'InsufficientBalance', cost: '0', messageId: 'None' }] } } }), 405, 'InsufficientBalance', true],
  ])('when AT answers %s, then the SMS fails at once with that status recorded (ops alert: our account)', async (what, answer, code, status, accountProblem) => {
    const { status: http, body } = answer();
    const scope = nock(AT_SANDBOX_HOST).post('/version1/messaging').reply(http, body);
    const extra = nock(AT_SANDBOX_HOST).post('/version1/messaging').reply(201, {});
    const before = (await alerts()).length;
    const row = await sendOne(svc, `fixture-${what}`);
    const failed = await waitFor(async () => (await row())?.status === 'failed' && row(), 'the SMS to fail');
    expect(scope.isDone()).toBe(true);
    expect(extra.isDone()).toBe(false);
    expect(failed).toMatchObject({ attempts: 1, at_status: status, at_status_code: code, at_message_id: null });
    const raised = await alerts();
    expect(raised.length - before).toBe(accountProblem ? 1 : 0);
    if (accountProblem) expect(raised.find((a) => a.details.status === status)).toMatchObject({ severity: 'error', order_id: null });
  });

  test('when our account keeps failing, then one alert per cause per day, however many messages fail', async () => {
    const refused = { SMSMessageData: { Message: 'Sent to 0/1', Recipients: [{ statusCode: 402, number: '+254712345678', status: 'InvalidSenderId', cost: '0', messageId: 'None' }] } };
    nock(AT_SANDBOX_HOST).post('/version1/messaging').times(3).reply(201, refused);
    const rows = await Promise.all(['acct-1', 'acct-2', 'acct-3'].map((k) => sendOne(svc, k)));
    for (const row of rows) await waitFor(async () => (await row())?.status === 'failed', 'the SMS to fail');
    expect(await svc.db('ops_alerts').where({ kind: 'sms_account_problem' }).where('dedupe_key', 'like', 'sms-account-InvalidSenderId-%')).toHaveLength(1);
  });

  test('when the old gateway answers "Could Not Send" with no statusCode, then it is retried, not taken as sent', async () => {
    const sms: CapturedSms[] = [];
    const { body } = recorded(19);
    const first = nock(AT_SANDBOX_HOST).post('/version1/messaging').reply(201, body);
    mockAtSmsAccepted(sms);
    const row = await sendOne(svc, 'could-not-send');
    const sent = await waitFor(async () => (await row())?.status === 'sent' && row(), 'the SMS to be sent');
    expect(first.isDone()).toBe(true);
    expect(sent).toMatchObject({ attempts: 2, at_status_code: 101 });
  });

  test.each([
    ['101 Success (sandbox, 21 Nov 2023)', 0, 101],
    ['102 Queued, status still "Success"', 1, 102],
  ])('when AT answers %s, then it is sent', async (_what, i, code) => {
    const { status, body } = recorded(i);
    nock(AT_SANDBOX_HOST).post('/version1/messaging').reply(status, body);
    const row = await sendOne(svc, `fixture-sent-${i}`);
    const sent = await waitFor(async () => (await row())?.status === 'sent' && row(), 'the SMS to be sent');
    expect(sent).toMatchObject({ attempts: 1, at_status_code: code, at_cost: 'KES 0.8000' });
    expect(sent.at_message_id).toMatch(/^ATXid_/);
  });
});

describe('delivery reports: every status is stored, none refused', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService();
  });
  afterEach(() => nock.cleanAll());
  afterAll(() => svc.close());

  /** One delivery report, form-encoded as Africa's Talking posts it. */
  const report = (form: Record<string, string>) =>
    fetch(`${svc.url}${DELIVERY_REPORTS_PATH}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form) });

  async function sentMessage(key: string): Promise<string> {
    const sms: CapturedSms[] = [];
    mockAtSmsAccepted(sms);
    const row = await sendOne(svc, key);
    return (await waitFor(async () => (await row())?.status === 'sent' && row(), 'the SMS to be sent')).at_message_id;
  }

  test.each([
    ['Expired (undocumented until a real deployment met it)', { status: 'Expired' }, 'Expired'],
    ['AbsentSubscriber', { status: 'AbsentSubscriber', failureReason: 'AbsentSubscriber' }, 'AbsentSubscriber'],
    ['a status no documentation lists', { status: 'PendingOnNetwork' }, 'PendingOnNetwork'],
    ['no status at all (seen in the wild, with retryCount)', { retryCount: '2' }, null],
  ])('when the report says %s, then 200 and it is stored as is', async (what, fields, stored) => {
    const id = await sentMessage(`report-${what}`);
    const res = await report({ id, phoneNumber: '+254712345678', ...fields });
    expect(res.status).toBe(200);
    const row = await svc.db('sms_messages').where({ at_message_id: id }).first();
    expect(row.delivery_status).toBe(stored);
    expect(row.delivery_reported_at).not.toBeNull();
  });

  test('when a real production report arrives (form fields in AT\'s order, retryCount "0"), then it is stored with its failure reason', async () => {
    const id = await sentMessage('report-real');
    const res = await report({ phoneNumber: '+254706318147', failureReason: 'DeliveryFailure', retryCount: '0', id, status: 'Failed', networkCode: '63902' });
    expect(res.status).toBe(200);
    expect(await svc.db('sms_messages').where({ at_message_id: id }).first()).toMatchObject({ delivery_status: 'Failed', delivery_failure_reason: 'DeliveryFailure' });
  });
});

