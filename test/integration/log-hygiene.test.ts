import nock from 'nock';
import { AT_SANDBOX_HOST, DARAJA_HOST, expectBooksBalanced, fundPoolGrams, SANDBOX_PASSKEY, startTestService, waitFor, type TestService } from '../support/harness';
import { dial, postCallback } from '../support/http';
import { mockAtSmsAccepted, mockDarajaToken, mockStkPushAccepted, stkCallbackBody, type CapturedSms, type CapturedStk } from '../support/vendors';

/**
 * What reaches the logs over a whole buy (USSD -> STK Push -> callback -> SMS), with a vendor error on
 * the way whose message quotes the phone number, as Daraja's sometimes do.
 */
describe('the logs of a whole buy', () => {
  let svc: TestService;
  const lines: string[] = [];
  const TOKEN = 'tok-LOGHYGIENE-7f3a9c';
  const AT_KEY = 'at-key-LOGHYGIENE-51d2';
  const PHONE = '254712345678';

  beforeAll(async () => {
    svc = await startTestService({ LOG_LEVEL: 'info', AT_API_KEY: AT_KEY }, { logDestination: { write: (line: string) => void lines.push(line) } });
    await fundPoolGrams(svc.db, 10);
  });
  afterEach(async () => {
    await expectBooksBalanced(svc.db);
    nock.cleanAll();
  });
  afterAll(() => svc.close());

  test('when a saver buys, pays and gets the receipt, then the JSON logs tell the story with the phone masked and no secret, token, password, PIN, USSD input or callback body in them', async () => {
    const stk: CapturedStk[] = [];
    const sms: CapturedSms[] = [];
    mockDarajaToken(TOKEN);
    nock(DARAJA_HOST).post('/mpesa/stkpush/v1/processrequest').reply(500, { requestId: 'r-1', errorCode: '500.003.02', errorMessage: `System is busy, try again (${PHONE})` });
    mockStkPushAccepted(stk);
    nock(AT_SANDBOX_HOST).post('/version1/messaging').reply(500, `gateway error for +${PHONE}`);
    mockAtSmsAccepted(sms);

    const { last } = await dial(svc.url, ['1', '500', '1'], { phoneNumber: `+${PHONE}` });
    expect(last).toMatch(/^END Request received/);
    await waitFor(() => Promise.resolve(stk.length === 1), 'the accepted STK push');
    const payment = await waitFor(() => svc.db('stk_payments').whereNotNull('checkout_request_id').first(), 'the CheckoutRequestID');
    const receipt = 'LOGRCPT7Q1';
    const ack = await postCallback(svc.url, stkCallbackBody({ checkoutRequestId: payment.checkout_request_id, resultCode: 0, amount: 500, receipt, phone: Number(PHONE) }));
    expect(ack.status).toBe(200);
    await waitFor(() => Promise.resolve(sms.length === 1), 'the receipt SMS');
    await waitFor(() => svc.db('sms_messages').where({ status: 'sent' }).first(), 'the SMS marked sent');

    const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    // The story is there (so the absence checks below mean something) ...
    const messages = entries.map((e) => e.msg);
    expect(messages).toEqual(expect.arrayContaining(['buy order placed', 'stk push accepted', 'stk callback', 'job attempt failed']));
    expect(entries.find((e) => e.msg === 'buy order placed')).toMatchObject({ phone: '2547******78' });
    expect(entries.find((e) => e.msg === 'job attempt failed' && String(e.err).includes('500.003.02'))).toMatchObject({ err: expect.stringContaining('2547******78') });
    // ... and nothing that must not be.
    const all = lines.join('\n');
    const forbidden = {
      'the full phone number': '712345678',
      'the access token': TOKEN,
      'the passkey': SANDBOX_PASSKEY,
      'the STK password': stk[0]!.body.Password as string,
      'a Password field': '"Password"',
      'the consumer secret': 'test-consumer-secret',
      "Africa's Talking's API key": AT_KEY,
      'the callback secret': svc.config.mpesa.callbackSecret,
      'the USSD input': '1*500*1',
      'the SMS text': 'Gold purchase confirmed',
      'the callback body': 'CallbackMetadata',
    };
    for (const [what, value] of Object.entries(forbidden)) {
      expect({ what, found: all.includes(value) }).toEqual({ what, found: false });
    }
    for (const e of entries) expect(typeof e.level === 'number' && typeof e.time === 'number' && typeof e.msg === 'string').toBe(true);
  });
});
