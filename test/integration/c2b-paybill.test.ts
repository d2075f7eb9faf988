import nock from 'nock';
import { createDb } from '../../src/db/knex';
import { en } from '../../src/i18n/en';
import { expectBooksBalanced, fundPoolGrams, startTestService, waitFor, withRedis, type TestService } from '../support/harness';
import { dial, postCallback } from '../support/http';
import { ops } from '../support/ops';
import { ADMIN_DATABASE_URL } from '../support/test-env';
import { mockAtSmsAccepted, type CapturedSms } from '../support/vendors';
import { c2bBody, c2bEnv, CONFIRMATION_PATH, nextTransId, VALIDATION_PATH } from '../support/c2b';

/**
 * Pay by Paybill (M-Pesa C2B): Daraja's validation and confirmation callbacks against the real service
 * (real Postgres and Redis); nock only at Africa's Talking.
 */

let phoneCounter = 0;
/** A fresh wallet number per test, written as savers type it: 07…. */
const nextAccount = () => `07210${String(++phoneCounter).padStart(5, '0')}`;
const msisdnOfAccount = (account: string) => `254${account.slice(1)}`;

describe('Pay by Paybill (C2B)', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService(c2bEnv());
    await fundPoolGrams(svc.db, 1);
  });
  afterEach(async () => {
    await expectBooksBalanced(svc.db);
    nock.cleanAll();
  });
  afterAll(() => svc.close());

  const confirm = (body: unknown, path = CONFIRMATION_PATH) => postCallback(svc.url, body, path);
  const walletOf = async (msisdn: string) => {
    const customer = await svc.db('customers').where({ msisdn }).first();
    if (!customer) return null;
    const account = await svc.db('accounts').where({ customer_id: customer.id }).first();
    return { customer, posted: account ? account.credits_posted - account.debits_posted : 0 };
  };

  test('when a saver opens Buy, then the amount screen tells them how to pay by Paybill', async () => {
    const phone = `+254${nextAccount().slice(1)}`;
    await dial(svc.url, [], { phoneNumber: phone }); // past the first dial's language offer
    expect((await dial(svc.url, ['1'], { phoneNumber: phone })).last).toBe(`CON ${en.ussd.buyAmountPaybill('10', '150,000', '174379')}`);
  });

  describe('validation', () => {
    test.each([
      ['07… and whole KES', '0712345678', '100', '0'],
      ['01… with spaces and "100.00"', ' 0110 345 678 ', '100.00', '0'],
      ['2547…', '254712345678', '10', '0'],
      ['2541…', '254112345678', '150000.00', '0'],
      ['+254…', '+254712345678', '500', '0'],
      ['the account is a name', 'JANE DOE', '100', 'C2B00012'],
      ['the account is empty', '', '100', 'C2B00012'],
      ['the account is a landline', '0202345678', '100', 'C2B00012'],
      ['the account has too many digits', '07123456789', '100', 'C2B00012'],
      ['a number inside other text', 'REF0712345678', '100', 'C2B00012'],
      ['a number with dots', '0712.345.678', '100', 'C2B00012'],
      ['below BUY_MIN_KES', '0712345678', '9', 'C2B00013'],
      ['above BUY_MAX_KES', '0712345678', '150001', 'C2B00013'],
      ['not whole shillings', '0712345678', '100.50', 'C2B00013'],
    ])('when %s (account %j, amount %j), then the answer is ResultCode %j and nothing is recorded', async (_what, account, amount, code) => {
      const res = await postCallback(svc.url, c2bBody({ account, amount }), VALIDATION_PATH);
      expect(res.status).toBe(200);
      expect(res.json).toEqual({ ResultCode: code, ResultDesc: code === '0' ? 'Accepted' : 'Rejected' });
      expect(await svc.db('c2b_payments').where({ bill_ref_number: account }).first()).toBeUndefined();
    });

    test('when the payment is to another shortcode, then it is rejected with C2B00015', async () => {
      const res = await postCallback(svc.url, { ...c2bBody({ account: '0712345678', amount: '100' }), BusinessShortCode: '600000' }, VALIDATION_PATH);
      expect(res).toMatchObject({ status: 200, json: { ResultCode: 'C2B00015' } });
    });

    test('when the secret segment is wrong, then 404 and no answer of Daraja shape', async () => {
      const res = await postCallback(svc.url, c2bBody({ account: '0712345678', amount: '100' }), '/c2b/validation/c2b-Secret-0a1b2c3d4e5X');
      expect(res.status).toBe(404);
      expect(res.json).toEqual({ error: 'not_found' });
    });

    test('when the body is not Daraja\'s, then 400', async () => {
      const res = await postCallback(svc.url, { TransAmount: '100' }, VALIDATION_PATH);
      expect(res.status).toBe(400);
    });
  });

  describe('confirmation', () => {
    test('when a saver pays KES 100 to the Paybill with their number as account, then they get exactly the floored grams at the buy quote and an SMS naming the TransID', async () => {
      const account = nextAccount();
      const msisdn = msisdnOfAccount(account);
      const sms: CapturedSms[] = [];
      mockAtSmsAccepted(sms);
      const transId = nextTransId();
      const body = c2bBody({ transId, account, amount: '100.00' });

      const res = await confirm(body);

      expect(res).toMatchObject({ status: 200, json: { ResultCode: '0', ResultDesc: 'Accepted' } });
      // KES 100 at KES 8,500/g: 10,000 cents * 1,000,000 / 850,000 = 11,764.7 ug, rounded down.
      const wallet = await walletOf(msisdn);
      expect(wallet!.posted).toBe(11_764);
      const payment = await svc.db('c2b_payments').where({ trans_id: transId }).first();
      expect(payment).toMatchObject({ status: 'credited', amount_cents: 10_000, msisdn, bill_ref_number: account, business_shortcode: '174379' });
      expect(payment.payload).toEqual(body);
      const order = await svc.db('orders').where({ id: payment.order_id }).first();
      expect(order).toMatchObject({ kind: 'buy', status: 'paid', source_key: `c2b:${transId}`, amount_cents: 10_000, price_cents_per_gram: 850_000, grams_ug: 11_764, msisdn });
      expect(await svc.db('transfers').where({ pending_id: `buy-${order.id}`, status: 'posted' }).first()).toMatchObject({ amount: 11_764 });

      await waitFor(() => Promise.resolve(sms.length === 1), 'the receipt SMS');
      expect(sms[0]!.form.get('to')).toBe(`+${msisdn}`);
      expect(sms[0]!.form.get('message')).toBe(en.sms.buyReceipt({ receipt: transId, grams: '0.0117', kes: '100', price: '8,500', balance: '0.0117' }));
    });

    test('when the MSISDN is masked or a hash, then the account number still names the wallet (a new number gets one)', async () => {
      const account = nextAccount();
      const msisdn = msisdnOfAccount(account);
      mockAtSmsAccepted([], undefined, 2);
      expect(await walletOf(msisdn)).toBeNull();

      expect((await confirm(c2bBody({ account, amount: '200', msisdn: '2547 ***** 126' }))).status).toBe(200);
      expect((await confirm(c2bBody({ account: `+${msisdn}`, amount: '200', msisdn: 'f3b1a9c0e8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1' }))).status).toBe(200);

      const wallet = await walletOf(msisdn);
      expect(wallet!.customer).toMatchObject({ msisdn, language: 'en' });
      expect(wallet!.posted).toBe(2 * 23_529);
      expect(await svc.db('customers').where('msisdn', 'like', '%126').first()).toBeUndefined();
    });

    test('when the same confirmation comes again, then 200 and nothing changes', async () => {
      const account = nextAccount();
      mockAtSmsAccepted([]);
      const body = c2bBody({ account, amount: '100' });
      expect((await confirm(body)).status).toBe(200);
      const after = await walletOf(msisdnOfAccount(account));

      const again = await confirm(body);

      expect(again).toMatchObject({ status: 200, json: { ResultCode: '0' } });
      expect((await walletOf(msisdnOfAccount(account)))!.posted).toBe(after!.posted);
      expect(await svc.db('orders').where({ source_key: `c2b:${body.TransID}` }).count({ n: '*' })).toEqual([{ n: 1 }]);
      expect(await svc.db('sms_messages').where({ msisdn: msisdnOfAccount(account) }).count({ n: '*' })).toEqual([{ n: 1 }]);
    });

    test('when 10 identical confirmations arrive at once, then the gold is credited exactly once and every one is answered 200', async () => {
      const account = nextAccount();
      const msisdn = msisdnOfAccount(account);
      const sms: CapturedSms[] = [];
      mockAtSmsAccepted(sms, undefined, 10);
      const body = c2bBody({ account, amount: '300' });

      const answers = await Promise.all(Array.from({ length: 10 }, () => confirm(body)));

      for (const a of answers) expect(a).toMatchObject({ status: 200, json: { ResultCode: '0' } });
      expect((await walletOf(msisdn))!.posted).toBe(35_294);
      expect(await svc.db('c2b_payments').where({ trans_id: body.TransID }).count({ n: '*' })).toEqual([{ n: 1 }]);
      expect(await svc.db('orders').where({ msisdn }).count({ n: '*' })).toEqual([{ n: 1 }]);
      await waitFor(() => svc.db('sms_messages').where({ msisdn, status: 'sent' }).first(), 'the receipt SMS');
      expect(await svc.db('sms_messages').where({ msisdn }).count({ n: '*' })).toEqual([{ n: 1 }]);
    });

    test('when the pool cannot cover the gold, then the payment goes to review with an alert and an SMS, and an operator credits it once the pool is funded', async () => {
      const account = nextAccount();
      const msisdn = msisdnOfAccount(account);
      const sms: CapturedSms[] = [];
      mockAtSmsAccepted(sms, undefined, 1, msisdn);
      const transId = nextTransId();

      // KES 20,000 is 2.35 g; the pool holds less than 1 g.
      const res = await confirm(c2bBody({ transId, account, amount: '20000.00' }));

      expect(res).toMatchObject({ status: 200, json: { ResultCode: '0' } });
      const payment = await svc.db('c2b_payments').where({ trans_id: transId }).first();
      expect(payment).toMatchObject({ status: 'review', review_reason: 'pool_insufficient' });
      const order = await svc.db('orders').where({ id: payment.order_id }).first();
      expect(order).toMatchObject({ status: 'review', failure_code: 'c2b_pool_insufficient', grams_ug: 2_352_941, amount_cents: 2_000_000 });
      expect((await walletOf(msisdn))!.posted).toBe(0);
      expect(await svc.db('ops_alerts').where({ kind: 'c2b_payment_unallocated', order_id: order.id }).whereNull('resolved_at').first()).toMatchObject({ severity: 'error' });
      await waitFor(() => Promise.resolve(sms.length === 1), 'the review SMS');
      expect(sms[0]!.form.get('message')).toBe(en.sms.buyLateReview({ receipt: transId, kes: '20,000' }));

      // Refused while the pool is still short; then funded and credited.
      const refused = await ops(svc, `/ops/orders/${order.id}/resolve`, { body: { action: 'credit', note: 'Paybill payment', operator: 'ops-1' } });
      expect(refused.status).toBe(409);
      await fundPoolGrams(svc.db, 3);
      const credited = await ops(svc, `/ops/orders/${order.id}/resolve`, { body: { action: 'credit', note: 'pool funded', operator: 'ops-1' } });
      expect(credited.status).toBe(200);
      expect(await svc.db('orders').where({ id: order.id }).first()).toMatchObject({ status: 'paid' });
      expect((await walletOf(msisdn))!.posted).toBe(2_352_941);
      expect(await svc.db('ops_alerts').where({ kind: 'c2b_payment_unallocated', order_id: order.id }).first()).toMatchObject({ resolution: 'credit by ops-1' });

      // A late duplicate of the confirmation changes nothing.
      expect((await confirm(c2bBody({ transId, account, amount: '20000.00' }))).status).toBe(200);
      expect((await walletOf(msisdn))!.posted).toBe(2_352_941);
    });

    test.each([
      ['not whole shillings', '100.50', 'amount_not_whole', 10_050],
      ['below BUY_MIN_KES', '5', 'amount_below_minimum', 500],
      ['above BUY_MAX_KES', '150001', 'amount_above_maximum', 15_000_100],
    ])('when the amount is %s, then the payment is an order in review (nothing credited), with an alert and an SMS', async (_what, amount, reason, cents) => {
      const account = nextAccount();
      const sms: CapturedSms[] = [];
      mockAtSmsAccepted(sms, undefined, 1, msisdnOfAccount(account));
      const transId = nextTransId();

      expect(await confirm(c2bBody({ transId, account, amount }))).toMatchObject({ status: 200, json: { ResultCode: '0' } });

      const payment = await svc.db('c2b_payments').where({ trans_id: transId }).first();
      expect(payment).toMatchObject({ status: 'review', review_reason: reason, amount_cents: cents });
      expect(await svc.db('orders').where({ id: payment.order_id }).first()).toMatchObject({ status: 'review', failure_code: `c2b_${reason}`, amount_cents: cents });
      expect((await walletOf(msisdnOfAccount(account)))!.posted).toBe(0);
      expect(await svc.db('ops_alerts').where({ dedupe_key: `c2b-unallocated-${transId}` }).first()).toBeDefined();
      await waitFor(() => Promise.resolve(sms.length === 1), 'the review SMS');
    });

    test('when an operator refunds a C2B review order outside the system, then it is closed and nothing is credited', async () => {
      const account = nextAccount();
      mockAtSmsAccepted([]);
      const transId = nextTransId();
      await confirm(c2bBody({ transId, account, amount: '100.50' }));
      const payment = await svc.db('c2b_payments').where({ trans_id: transId }).first();

      const res = await ops(svc, `/ops/orders/${payment.order_id}/resolve`, { body: { action: 'refund_note', note: 'reversed on the org portal', operator: 'ops-2' } });

      expect(res.status).toBe(200);
      expect((await svc.db('orders').where({ id: payment.order_id }).first()).status).not.toBe('review');
      expect((await walletOf(msisdnOfAccount(account)))!.posted).toBe(0);
    });

    test('when the account number is not a phone number, then the money is recorded for review with an alert (no wallet, no SMS, no order)', async () => {
      const transId = nextTransId();
      const customersBefore = await svc.db('customers').count({ n: '*' }).first();

      expect(await confirm(c2bBody({ transId, account: 'JANE SAVINGS', amount: '500' }))).toMatchObject({ status: 200, json: { ResultCode: '0' } });

      expect(await svc.db('c2b_payments').where({ trans_id: transId }).first()).toMatchObject({ status: 'review', review_reason: 'account_not_a_phone', order_id: null, msisdn: null, amount_cents: 50_000 });
      expect(await svc.db('ops_alerts').where({ dedupe_key: `c2b-unallocated-${transId}` }).first()).toMatchObject({ kind: 'c2b_payment_unallocated', order_id: null });
      expect(await svc.db('customers').count({ n: '*' }).first()).toEqual(customersBefore);
      expect(await svc.db('sms_messages').where({ dedupe_key: `c2b-review-${transId}` }).first()).toBeUndefined();
    });

    test('when the secret segment is wrong, then 404 and nothing is recorded', async () => {
      const body = c2bBody({ account: nextAccount(), amount: '100' });
      const res = await confirm(body, '/c2b/confirmation/c2b-Secret-0a1b2c3d4e5X');
      expect(res).toMatchObject({ status: 404, json: { error: 'not_found' } });
      expect(await svc.db('c2b_payments').where({ trans_id: body.TransID }).first()).toBeUndefined();
    });

    test.each([
      ['no TransID', 'TransID', (b: any) => ({ ...b, TransID: undefined })],
      ['an amount that is not a number', 'TransAmount', (b: any) => ({ ...b, TransAmount: '1e5' })],
      ['a zero amount', 'TransAmount', (b: any) => ({ ...b, TransAmount: '0.00' })],
      ['a TransID with markup', 'TransID', (b: any) => ({ ...b, TransID: '<script>' })],
      ['no BusinessShortCode', 'BusinessShortCode', (b: any) => ({ ...b, BusinessShortCode: null })],
    ])('when the body has %s, then it is kept as it came with one c2b_unparsed alert, 200, and nothing is credited', async (_what, field, change) => {
      const body = change(c2bBody({ account: nextAccount(), amount: '100' }));
      const unparsedAlerts = () => svc.db('ops_alerts').where({ kind: 'c2b_unparsed' }).orderBy('id');
      const before = await unparsedAlerts();
      const kept = () => svc.db('mpesa_callbacks').where({ kind: 'c2b_confirmation', outcome: 'unparsed' }).whereRaw("payload->>'BillRefNumber' = ?", [body.BillRefNumber]);
      // The money has left the payer: Safaricom gets its 200, the operator gets the body and an alert.
      expect(await confirm(body)).toMatchObject({ status: 200, json: { ResultCode: '0' } });
      expect(await confirm(body)).toMatchObject({ status: 200 });
      expect(await kept()).toHaveLength(2);
      expect((await kept())[0].payload).toEqual(JSON.parse(JSON.stringify(body)));
      const raised = (await unparsedAlerts()).slice(before.length);
      expect(raised).toHaveLength(1);
      expect(raised[0]).toMatchObject({ severity: 'error', order_id: null, details: { transId: typeof body.TransID === 'string' ? body.TransID : null } });
      expect(raised[0].details.fields).toContain(field);
      expect(await svc.db('c2b_payments').where({ bill_ref_number: body.BillRefNumber }).first()).toBeUndefined();
      expect(await walletOf(msisdnOfAccount(body.BillRefNumber))).toBeNull();
    });

    test('when a readable TransID comes in a body we cannot read, then that TransID is taken for review: a later readable copy credits nothing beside the hand settlement', async () => {
      const account = nextAccount();
      const transId = nextTransId();
      expect(await confirm({ ...c2bBody({ transId, account, amount: '100' }), TransAmount: '1,00.00' })).toMatchObject({ status: 200 });
      expect(await svc.db('c2b_payments').where({ trans_id: transId }).first()).toMatchObject({ status: 'review', review_reason: 'unparsed', order_id: null, amount_cents: 0 });
      expect(await confirm(c2bBody({ transId, account, amount: '100' }))).toMatchObject({ status: 200, json: { ResultCode: '0' } });
      expect(await walletOf(msisdnOfAccount(account))).toBeNull();
      expect(await svc.db('c2b_payments').where({ trans_id: transId }).count({ n: '*' })).toEqual([{ n: 1 }]);
    });

    test('when a field holds text Postgres cannot store (half an emoji, NUL), then the payment is recorded with U+FFFD in its place and credited', async () => {
      mockAtSmsAccepted([]);
      const account = nextAccount();
      const transId = nextTransId();
      const body = JSON.stringify({ ...c2bBody({ transId, account, amount: '100' }), FirstName: 'JANE \ud83d', MiddleName: 'A\u0000B' });
      const res = await fetch(`${svc.url}${CONFIRMATION_PATH}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      expect(res.status).toBe(200);
      const payment = await svc.db('c2b_payments').where({ trans_id: transId }).first();
      expect(payment).toMatchObject({ status: 'credited' });
      expect(payment.payload.FirstName).toBe('JANE \ufffd');
      expect((await walletOf(msisdnOfAccount(account)))!.posted).toBe(11_764);
    });

    test('when Daraja sends null for the account number, the payer\'s phone, name and time, then the payment is still recorded (review: no wallet named)', async () => {
      const transId = nextTransId();
      const body = { ...c2bBody({ transId, account: 'x', amount: '100' }), BillRefNumber: null, MSISDN: null, FirstName: null, TransTime: null };
      expect(await confirm(body)).toMatchObject({ status: 200, json: { ResultCode: '0' } });
      expect(await svc.db('c2b_payments').where({ trans_id: transId }).first()).toMatchObject({ status: 'review', review_reason: 'account_not_a_phone', bill_ref_number: '', trans_time: null, amount_cents: 10_000 });
    });

    test('when only the payer\'s phone, name and time are null, then the account number\'s wallet is credited as usual', async () => {
      mockAtSmsAccepted([]);
      const account = nextAccount();
      const body = { ...c2bBody({ account, amount: '100' }), MSISDN: null, FirstName: null, TransTime: null };
      expect(await confirm(body)).toMatchObject({ status: 200 });
      expect((await walletOf(msisdnOfAccount(account)))!.posted).toBe(11_764);
    });

    test('when the payment names another BusinessShortCode, then it goes to review with an alert: no wallet, no gold, no SMS', async () => {
      const account = nextAccount();
      const transId = nextTransId();
      const sms: CapturedSms[] = [];
      mockAtSmsAccepted(sms);
      expect(await confirm({ ...c2bBody({ transId, account, amount: '100' }), BusinessShortCode: '600000' })).toMatchObject({ status: 200, json: { ResultCode: '0' } });
      expect(await svc.db('c2b_payments').where({ trans_id: transId }).first()).toMatchObject({ status: 'review', review_reason: 'shortcode_not_ours', order_id: null, business_shortcode: '600000' });
      expect(await svc.db('ops_alerts').where({ dedupe_key: `c2b-unallocated-${transId}` }).first()).toMatchObject({ kind: 'c2b_payment_unallocated', severity: 'error' });
      expect(await walletOf(msisdnOfAccount(account))).toBeNull();
      expect(await svc.db('sms_messages').where({ dedupe_key: `c2b-review-${transId}` }).first()).toBeUndefined();
    });

    test('when a payment takes the saver past BUY_DAILY_LIMIT_KES, then it goes to review (daily_limit) and nothing is credited', async () => {
      mockAtSmsAccepted([], undefined, 3);
      const account = nextAccount();
      // Two of BUY_MAX_KES (the pool cannot cover them: review, which still counts towards the day).
      for (const _ of [1, 2]) await confirm(c2bBody({ account, amount: '150000' }));
      const transId = nextTransId();
      expect(await confirm(c2bBody({ transId, account, amount: '100' }))).toMatchObject({ status: 200 });
      const payment = await svc.db('c2b_payments').where({ trans_id: transId }).first();
      expect(payment).toMatchObject({ status: 'review', review_reason: 'daily_limit' });
      expect(await svc.db('orders').where({ id: payment.order_id }).first()).toMatchObject({ status: 'review', failure_code: 'c2b_daily_limit', amount_cents: 10_000 });
      expect((await walletOf(msisdnOfAccount(account)))!.posted).toBe(0);
    });

    test('when Postgres is unreachable, then 503, the body waits in the c2b-confirmation queue and is credited once Postgres is back; Safaricom\'s retry is a duplicate', async () => {
      const account = nextAccount();
      const body = c2bBody({ account, amount: '100' });
      const name = svc.db.client.database() as string;
      const admin = createDb(ADMIN_DATABASE_URL, { max: 1 });
      let res;
      try {
        await admin.raw(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
        await admin.raw('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ?', [name]);
        res = await confirm(body);
      } finally {
        await admin.raw(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
        await admin.destroy();
      }
      expect(res).toMatchObject({ status: 503, json: { ResultCode: '1' } });
      mockAtSmsAccepted([], undefined, 2);
      // Spooled while Postgres was down: recorded once it is back, even if Safaricom never sends it again.
      await waitFor(async () => (await svc.db('c2b_payments').where({ trans_id: body.TransID }).first())?.status === 'credited', 'the spooled confirmation to be recorded');
      expect(await confirm(body)).toMatchObject({ status: 200, json: { ResultCode: '0' } });
      expect((await walletOf(msisdnOfAccount(account)))!.posted).toBe(11_764);
      expect(await svc.db('c2b_payments').where({ trans_id: body.TransID }).count({ n: '*' })).toEqual([{ n: 1 }]);
    });
  });
});

describe('Pay by Paybill without a fresh price', () => {
  const FEED = 'https://prices.example.com';
  let answer: { buyKesPerGram: string; sellKesPerGram: string; ageMs: number } = { buyKesPerGram: '9000.50', sellKesPerGram: '8700.25', ageMs: 1000 };
  let svc: TestService;
  beforeAll(async () => {
    nock(FEED).persist().get('/v1/gold').reply(() => [200, { buyKesPerGram: answer.buyKesPerGram, sellKesPerGram: answer.sellKesPerGram, asOf: new Date(Date.now() - answer.ageMs).toISOString() }]);
    svc = await startTestService({ ...c2bEnv(), PRICE_PROVIDER: 'http', PRICE_URL: `${FEED}/v1/gold`, PRICE_POLL_SECONDS: '1', PRICE_MAX_AGE_SECONDS: '60' });
    await fundPoolGrams(svc.db, 10);
  });
  afterEach(() => expectBooksBalanced(svc.db));
  afterAll(async () => {
    await svc.close();
    nock.cleanAll();
  });

  const quote = async () => (await ops(svc, '/ops/prices')).json;

  test('when trading is paused by a price jump, then a Paybill payment goes to review at the highest known price, and an operator can credit it', async () => {
    await waitFor(async () => (await quote()).quote?.buyCentsPerGram === 900_050, 'the first accepted quote');
    answer = { ...answer, buyKesPerGram: '1.00', sellKesPerGram: '0.97' };
    await waitFor(async () => (await quote()).paused?.quote.buyCentsPerGram === 100, 'the pause');
    mockAtSmsAccepted([]);
    const transId2 = nextTransId();

    const res = await postCallback(svc.url, c2bBody({ transId: transId2, account: '0721099001', amount: '900' }), CONFIRMATION_PATH);

    expect(res).toMatchObject({ status: 200, json: { ResultCode: '0' } });
    const paused = await svc.db('c2b_payments').where({ trans_id: transId2 }).first();
    expect(paused).toMatchObject({ status: 'review', review_reason: 'price_unavailable' });
    // Never KES 1/g: the higher of the accepted and the paused quote.
    const order = await svc.db('orders').where({ id: paused.order_id }).first();
    expect(order).toMatchObject({ status: 'review', price_cents_per_gram: 900_050, grams_ug: 99_994 });
    expect(await svc.db('ops_alerts').where({ dedupe_key: `c2b-unallocated-${transId2}` }).first()).toBeDefined();

    const credited = await ops(svc, `/ops/orders/${order.id}/resolve`, { body: { action: 'credit', note: 'price checked', operator: 'ops-1' } });
    expect(credited.status).toBe(200);
    expect(await svc.db('orders').where({ id: order.id }).first()).toMatchObject({ status: 'paid' });
  });

  test('when the feed is stale, then a Paybill payment goes to review (price_unavailable), never credited at the old price', async () => {
    answer = { buyKesPerGram: '9000.50', sellKesPerGram: '8700.25', ageMs: 3_600_000 };
    // Back in band of the accepted quote (the pause lifts), but an hour old.
    await waitFor(async () => {
      const q = await quote();
      return q.quote === null && !q.paused && Date.parse(q.accepted.asOf) < Date.now() - 1_800_000;
    }, 'a stale accepted quote');
    mockAtSmsAccepted([]);
    const transId = nextTransId();

    expect((await postCallback(svc.url, c2bBody({ transId, account: '0721099002', amount: '900' }), CONFIRMATION_PATH)).status).toBe(200);

    const payment = await svc.db('c2b_payments').where({ trans_id: transId }).first();
    expect(payment).toMatchObject({ status: 'review', review_reason: 'price_unavailable' });
    expect(await svc.db('transfers').where({ pending_id: `buy-${payment.order_id}` }).first()).toBeUndefined();
  });

  test('when the shared store the price lives in cannot be read, then the payment is still recorded: review (price_unavailable), nothing credited', async () => {
    const key = `${svc.config.queuePrefix}:prices:latest`;
    const saved = await withRedis((r) => r.get(key));
    await withRedis((r) => r.set(key, 'not json'));
    try {
      mockAtSmsAccepted([]);
      const transId = nextTransId();
      expect(await postCallback(svc.url, c2bBody({ transId, account: '0721099003', amount: '900' }), CONFIRMATION_PATH)).toMatchObject({ status: 200, json: { ResultCode: '0' } });
      expect(await svc.db('c2b_payments').where({ trans_id: transId }).first()).toMatchObject({ status: 'review', review_reason: 'price_unavailable' });
      expect(await svc.db('ops_alerts').where({ dedupe_key: `c2b-unallocated-${transId}` }).first()).toBeDefined();
    } finally {
      await withRedis(async (r) => void (saved ? await r.set(key, saved) : await r.del(key)));
    }
  });
});
