import nock from 'nock';
import { queueSms } from '../../src/notifications/queue-sms';
import { AT_SANDBOX_HOST, startTestService, waitFor, type TestService } from '../support/harness';
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
