import nock from 'nock';
import { darajaPassword } from '../../src/vendors/daraja-time';
import { expectBooksBalanced, fundPoolGrams, SANDBOX_PASSKEY, startTestService, waitFor, type TestService } from '../support/harness';
import { dial, postCallback } from '../support/http';
import { mockAtSmsAccepted, mockDarajaToken, mockStkPushAccepted, stkCallbackBody, type CapturedSms, type CapturedStk } from '../support/vendors';

describe('buying gold by USSD, end to end', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService();
    await fundPoolGrams(svc.db, 100);
  });
  afterEach(async () => {
    await expectBooksBalanced(svc.db);
    nock.cleanAll();
  });
  afterAll(() => svc.close());

  test('when a user confirms and pays, then the STK request is exact, the gold is credited once and the SMS carries the receipt', async () => {
    const stk: CapturedStk[] = [];
    const sms: CapturedSms[] = [];
    const token = mockDarajaToken('tok-happy');
    mockStkPushAccepted(stk);
    mockAtSmsAccepted(sms);

    const { screens, last } = await dial(svc.url, ['1', '500', '1'], { phoneNumber: '+254712345678' });
    expect(screens[0]).toMatch(/^CON .*1 Buy gold/s);
    expect(screens[1]).toMatch(/^CON Enter amount in KES.*min 10, max 150,000/s);
    // 500 KES at 8,500/g = 0.058823.. g, shown truncated to 4 decimals
    expect(screens[2]).toBe('CON Buy 0.0588 g of gold for KES 500\nPrice KES 8,500/g\n1 Confirm\n2 Cancel');
    expect(last).toMatch(/^END .*M-Pesa prompt/);
    for (const s of screens) expect(s.length).toBeLessThanOrEqual(160);

    // Recorded before the reply: the order and its payment exist now.
    const order = await svc.db('orders').first();
    expect(order).toMatchObject({ msisdn: '254712345678', amount_cents: 50000, price_cents_per_gram: 850000, grams_ug: 58823 });

    await waitFor(() => Promise.resolve(stk.length === 1), 'the STK push');
    expect(token.isDone()).toBe(true);
    const { body, headers } = stk[0]!;
    expect(headers.authorization).toBe('Bearer tok-happy');
    expect(body.BusinessShortCode).toBe('174379');
    expect(body.Timestamp).toMatch(/^20\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])([01]\d|2[0-3])[0-5]\d[0-5]\d$/);
    expect(body.Password).toBe(darajaPassword('174379', SANDBOX_PASSKEY, body.Timestamp));
    expect(Buffer.from(body.Password, 'base64').toString()).toBe(`174379${SANDBOX_PASSKEY}${body.Timestamp}`);
    expect(body.TransactionType).toBe('CustomerPayBillOnline');
    expect(body.Amount).toBe(500);
    expect(Number.isInteger(body.Amount)).toBe(true);
    expect(body.PartyA).toBe('254712345678');
    expect(body.PhoneNumber).toBe('254712345678');
    expect(body.PartyB).toBe('174379');
    expect(body.CallBackURL).toBe(svc.config.mpesa.callbackUrl);
    expect(body.AccountReference).toBe(order.reference);
    expect(body.AccountReference.length).toBeLessThanOrEqual(12);
    expect(body.TransactionDesc.length).toBeLessThanOrEqual(13);

    const payment = await waitFor(() => svc.db('stk_payments').whereNotNull('checkout_request_id').first(), 'the stored CheckoutRequestID');
    expect(payment.merchant_request_id).toBe(`mr-${payment.checkout_request_id}`);
    expect((await svc.db('orders').first()).status).toBe('stk_sent');
    const pending = await svc.db('transfers').where({ id: `buy-${order.id}` }).first();
    expect(pending).toMatchObject({ status: 'pending', amount: 58823 });

    const ack = await postCallback(svc.url, stkCallbackBody({ checkoutRequestId: payment.checkout_request_id, resultCode: 0, amount: 500, receipt: 'NLJ7RT61SV', phone: 254712345678 }));
    expect(ack).toMatchObject({ status: 200, json: { ResultCode: 0, ResultDesc: 'Accepted' } });

    // Settled durably before the acknowledgement.
    expect((await svc.db('orders').first()).status).toBe('paid');
    const customerAccount = await svc.db('accounts').where({ customer_id: order.customer_id }).first();
    expect(customerAccount).toMatchObject({ credits_posted: 58823, credits_pending: 0 });
    expect(await svc.db('stk_payments').first()).toMatchObject({ mpesa_receipt: 'NLJ7RT61SV', transaction_date: '20261126102115', result_code: 0 });

    await waitFor(() => Promise.resolve(sms.length === 1), 'the receipt SMS');
    const message = sms[0]!.form.get('message')!;
    expect(sms[0]!.form.get('to')).toBe('+254712345678');
    expect(sms[0]!.headers.apikey).toBe('test-at-key');
    expect(message).toContain('NLJ7RT61SV');
    expect(message).toContain('0.0588 g');
    expect(message).toContain('KES 500');
    expect(message).toContain('KES 8,500/g');
    expect(message).toContain('balance 0.0588 g');
    expect(message.length).toBeLessThanOrEqual(160);
    const stored = await waitFor(() => svc.db('sms_messages').where({ status: 'sent' }).first(), 'the SMS marked sent');
    expect(stored.at_message_id).toMatch(/^ATXid_/);
    expect(stored.at_status_code).toBe(101);
  });
});
