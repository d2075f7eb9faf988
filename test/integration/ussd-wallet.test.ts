import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import nock from 'nock';
import { en } from '../../src/i18n/en';
import { sw } from '../../src/i18n/sw';
import { eatTime } from '../../src/lib/eat-time';
import { HttpPriceFeed } from '../../src/prices/price-source';
import { sessionKey } from '../../src/ussd/session-store';
import { AT_SANDBOX_HOST, DARAJA_HOST, USSD_EVENTS_PATH, expectBooksBalanced, fundPoolGrams, startTestService, waitFor, withRedis, type TestService } from '../support/harness';
import { dial, newSessionId, postCallback, ussd } from '../support/http';
import { msisdnOf, nextPhone } from '../support/phones';
import { mockAtSmsAccepted, mockStkPushAccepted, stkCallbackBody, type CapturedSms, type CapturedStk } from '../support/vendors';

/**
 * The wallet side of the menu through the real service (web + worker, Postgres, Redis), with nock
 * only at Daraja and Africa's Talking: the wallet PIN, My gold, Statement, Gold price, languages,
 * continuing a dropped session, and the end-of-session notification.
 */

const RESULT_PATH = '/mpesa/b2c/result/b2c-Result-5d1e6f';
const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const certDir = mkdtempSync(path.join(tmpdir(), 'gold-wallet-cert-'));
const CERT_PATH = path.join(certDir, 'safaricom-test.pem');
writeFileSync(CERT_PATH, publicKey.export({ type: 'spki', format: 'pem' }).toString());
afterAll(() => rmSync(certDir, { recursive: true, force: true }));

/** Selling on (B2C configured), and a wallet lock short enough to wait out. */
const WALLET_ENV = {
  MPESA_B2C_SHORTCODE: '600996',
  MPESA_INITIATOR_NAME: 'goldwallet_api',
  MPESA_INITIATOR_PASSWORD: 'Initiator-Pass!1',
  MPESA_B2C_CERT_PATH: CERT_PATH,
  MPESA_B2C_RESULT_URL: `https://wallet.example.com${RESULT_PATH}`,
  MPESA_B2C_TIMEOUT_URL: 'https://wallet.example.com/mpesa/b2c/timeout/b2c-Timeout-2a9f3b',
  MPESA_B2C_STATUS_RESULT_URL: 'https://wallet.example.com/mpesa/b2c/status/b2c-Status-8c3b4d',
  PIN_LOCK_SECONDS: '3',
  LOG_LEVEL: 'debug',
};

const PIN = '4826';
const NEW_PIN = '3971';
const HOME_EN = `${en.ussd.homeTitle}\n${en.ussd.homeMenu}`;
const HOME_SW = `${sw.ussd.homeTitle}\n${sw.ussd.homeMenu}`;

/** Every JSON log line the service writes, kept to look for PINs in. */
const logLines: string[] = [];
const logSink = new Writable({
  write(chunk, _enc, done) {
    logLines.push(...chunk.toString().split('\n').filter(Boolean));
    done();
  },
});

/** The PIN as a token of its own (not inside a longer number or a hex id). */
const containsPin = (text: string, pin: string) => new RegExp(`(^|[^0-9a-fA-F])${pin}([^0-9a-fA-F]|$)`).test(text);

function mockDaraja() {
  nock(DARAJA_HOST).persist().get('/oauth/v1/generate').query(true).reply(200, { access_token: 'tok-wallet', expires_in: '3599' });
}

/** Daraja accepts B2C payouts; returns each request's OriginatorConversationID (our payout id). */
function mockB2cAccepted(ids: string[], times = 1) {
  nock(DARAJA_HOST)
    .post('/mpesa/b2c/v3/paymentrequest')
    .times(times)
    .reply((_uri, body) => {
      ids.push((body as { OriginatorConversationID: string }).OriginatorConversationID);
      return [200, { ConversationID: `AG_20261126_${randomBytes(8).toString('hex')}`, OriginatorConversationID: 'ignored', ResponseCode: '0', ResponseDescription: 'Accept the service request successfully.' }];
    });
}

function b2cPaid(id: string, amount: number, receipt: string) {
  return {
    Result: {
      ResultType: 0,
      ResultCode: 0,
      ResultDesc: 'The service request is processed successfully.',
      OriginatorConversationID: id,
      ConversationID: `AG_20261126_${randomBytes(8).toString('hex')}`,
      TransactionID: receipt,
      ResultParameters: {
        ResultParameter: [
          { Key: 'TransactionAmount', Value: amount },
          { Key: 'TransactionReceipt', Value: receipt },
          { Key: 'ReceiverPartyPublicName', Value: '254708374149 - Jane Saver' },
          { Key: 'TransactionCompletedDateTime', Value: '26.11.2026 10:48:52' },
        ],
      },
    },
  };
}

describe('the USSD wallet: PIN, My gold, Statement, languages, resume, events', () => {
  let svc: TestService;
  const sms: CapturedSms[] = [];
  beforeAll(async () => {
    svc = await startTestService(WALLET_ENV, { logDestination: logSink });
    await fundPoolGrams(svc.db, 100);
  });
  beforeEach(() => {
    sms.length = 0;
    mockAtSmsAccepted(sms, AT_SANDBOX_HOST, 20);
  });
  afterEach(async () => {
    await expectBooksBalanced(svc.db);
    nock.cleanAll();
  });
  afterAll(() => svc.close());

  const customerOf = (phone: string) => svc.db('customers').where({ msisdn: msisdnOf(phone) }).first();
  const sessionJson = (sessionId: string, phone: string) => withRedis((r) => r.get(sessionKey(svc.config.queuePrefix, msisdnOf(phone), sessionId)));
  const resumeKey = (phone: string) => `${svc.config.queuePrefix}:ussd:resume:${msisdnOf(phone)}`;

  /** Sets the wallet PIN (through My gold), then goes home: nothing left to continue. */
  async function setPin(phone: string, pin = PIN) {
    const { screens } = await dial(svc.url, ['3', pin, pin, '00'], { phoneNumber: phone });
    expect(screens[3]).toMatch(new RegExp(`^CON ${en.ussd.pinSaved}\\n`));
  }

  /** A buy through the menu, paid by an STK callback (or left waiting for it). */
  async function buy(phone: string, amountKes: number, paid: boolean, receipt = `R${randomBytes(5).toString('hex').toUpperCase()}`) {
    const stk: CapturedStk[] = [];
    mockStkPushAccepted(stk);
    const { sessionId, last } = await dial(svc.url, ['1', String(amountKes), '1'], { phoneNumber: phone });
    expect(last).toMatch(/^END /);
    const order = await svc.db('orders').where('source_key', 'like', `ussd:%:${sessionId}`).first();
    const payment = await waitFor(() => svc.db('stk_payments').where({ order_id: order.id }).whereNotNull('checkout_request_id').first(), 'the STK push');
    if (paid) {
      const ack = await postCallback(svc.url, stkCallbackBody({ checkoutRequestId: payment.checkout_request_id, resultCode: 0, amount: amountKes, receipt, phone: msisdnOf(phone) }));
      expect(ack.status).toBe(200);
    }
    return order as { id: string; grams_ug: number };
  }

  /** A sale through the menu (the PIN confirms it), its payout accepted by Daraja, and paid when `paid`. */
  async function sell(phone: string, amountKes: number, paid: boolean) {
    const ids: string[] = [];
    mockB2cAccepted(ids);
    const { sessionId, last } = await dial(svc.url, ['2', String(amountKes), PIN], { phoneNumber: phone });
    expect(last).toBe(`END ${en.ussd.sellSubmitted(amountKes.toLocaleString('en-US'))}`);
    const order = await svc.db('orders').where('source_key', 'like', `ussd:%:${sessionId}`).first();
    await waitFor(() => Promise.resolve(ids.length === 1), 'the B2C request');
    await waitFor(async () => (await svc.db('payouts').where({ order_id: order.id }).first('status')).status === 'accepted', 'the payout accepted');
    if (paid) {
      const ack = await postCallback(svc.url, b2cPaid(ids[0]!, amountKes, `U${randomBytes(5).toString('hex').toUpperCase()}`), RESULT_PATH);
      expect(ack.status).toBe(200);
      await waitFor(async () => (await svc.db('orders').where({ id: order.id }).first('status')).status === 'paid', 'the sale paid');
    }
    return order as { id: string; grams_ug: number };
  }

  describe('wallet PIN', () => {
    test('when My gold is opened the first time, then a PIN is set typed twice; guessable and mismatched PINs are refused', async () => {
      const phone = nextPhone();
      const { screens, sessionId } = await dial(svc.url, ['3', '1234', '9876', '0000', PIN, '4862', PIN, PIN], { phoneNumber: phone });
      expect(screens[1]).toBe(`CON ${en.ussd.newPin}`);
      expect(screens[2]).toBe(`CON ${en.ussd.pinGuessable}\n${en.ussd.newPin}`);
      expect(screens[3]).toBe(`CON ${en.ussd.pinGuessable}\n${en.ussd.newPin}`);
      expect(screens[4]).toBe(`CON ${en.ussd.pinGuessable}\n${en.ussd.newPin}`);
      expect(screens[5]).toBe(`CON ${en.ussd.repeatPin}`);
      expect(screens[6]).toBe(`CON ${en.ussd.pinMismatch}\n${en.ussd.newPin}`);
      expect(screens[7]).toBe(`CON ${en.ussd.repeatPin}`);
      expect(screens[8]).toBe(`CON ${en.ussd.pinSaved}\n${en.ussd.myGold('0.0000')}\n${en.ussd.myGoldValue('0', '8,245')}\n${en.ussd.backHome}`);

      const customer = await customerOf(phone);
      expect(customer.pin_hash).toMatch(/^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}$/);
      expect(customer).toMatchObject({ pin_staged_hash: null, pin_staged_at: null, pin_failed_attempts: 0, pin_locked_until: null });
      // The session knows where the PINs were typed, never what they were.
      const session = JSON.parse((await sessionJson(sessionId, phone))!);
      expect(session.secretInputs).toEqual([1, 2, 3, 4, 5, 6, 7]);
      for (const pin of [PIN, '4862', '1234', '9876']) expect(containsPin(JSON.stringify(session), pin)).toBe(false);
    });

    test('when two savers choose the same PIN, then their stored hashes differ (a random salt each)', async () => {
      const [a, b] = [nextPhone(), nextPhone()];
      await setPin(a);
      await setPin(b);
      const [ha, hb] = [(await customerOf(a)).pin_hash, (await customerOf(b)).pin_hash];
      expect(ha).not.toBe(hb);
      expect(ha.split('$')[4]).not.toBe(hb.split('$')[4]);
    });

    test('when a wrong PIN is entered 3 times, then the wallet locks, an SMS warns, the right PIN is refused until the period ends, and then it works', async () => {
      const phone = nextPhone();
      await setPin(phone);
      const { screens } = await dial(svc.url, ['3', '1357', '1358', '1359'], { phoneNumber: phone });
      expect(screens[2]).toBe(`CON ${en.ussd.wrongPin(2)}\n${en.ussd.enterPin}`);
      expect(screens[3]).toBe(`CON ${en.ussd.wrongPin(1)}\n${en.ussd.enterPin}`);
      const customer = await customerOf(phone);
      const until = new Date(customer.pin_locked_until);
      expect(until.getTime()).toBeGreaterThan(Date.now());
      expect(until.getTime()).toBeLessThanOrEqual(Date.now() + 3000);
      expect(screens[4]).toBe(`END ${en.ussd.walletLocked(eatTime(until))}`);
      expect(customer.pin_failed_attempts).toBe(0);

      await waitFor(() => Promise.resolve(sms.some((m) => m.form.get('to') === phone)), 'the lock warning SMS');
      const warning = sms.find((m) => m.form.get('to') === phone)!.form.get('message');
      expect(warning).toBe(en.sms.pinLocked({ attempts: '3', until: eatTime(until) }));
      expect(await svc.db('sms_messages').where({ msisdn: msisdnOf(phone), purpose: 'pin_locked' }).count({ n: '*' })).toEqual([{ n: 1 }]);

      // While locked: told at once, no PIN asked, the right PIN not even looked at.
      const locked = await dial(svc.url, ['3'], { phoneNumber: phone });
      expect(locked.last).toBe(`CON ${en.ussd.walletLocked(eatTime(until))}\n${HOME_EN}`);
      const sellLocked = await dial(svc.url, ['2'], { phoneNumber: phone });
      expect(sellLocked.last).toBe(`CON ${en.ussd.walletLocked(eatTime(until))}\n${HOME_EN}`);

      await waitFor(() => Promise.resolve(Date.now() > until.getTime() + 50), 'the lock to run out');
      const after = await dial(svc.url, ['3', PIN], { phoneNumber: phone });
      expect(after.last).toMatch(new RegExp(`^CON ${en.ussd.myGold('0.0000')}\\n`));
      // Three fresh tries after the lock.
      const wrongAgain = await dial(svc.url, ['3', '1357'], { phoneNumber: phone });
      expect(wrongAgain.last).toBe(`CON ${en.ussd.wrongPin(2)}\n${en.ussd.enterPin}`);
    });

    test('when the PIN is changed under My account, then the old PIN comes first, the new one twice, and only the new one works after', async () => {
      const phone = nextPhone();
      await setPin(phone);
      const wrongOld = await dial(svc.url, ['6', '1', '1357'], { phoneNumber: phone });
      expect(wrongOld.screens[1]).toBe(`CON ${en.ussd.account(true)}`);
      expect(wrongOld.last).toBe(`CON ${en.ussd.wrongPin(2)}\n${en.ussd.enterPin}`);
      const hashBefore = (await customerOf(phone)).pin_hash;

      const { screens } = await dial(svc.url, ['6', '1', PIN, '2222', NEW_PIN, NEW_PIN], { phoneNumber: phone });
      expect(screens.slice(2)).toEqual([
        `CON ${en.ussd.enterPin}`,
        `CON ${en.ussd.newPinChange}`,
        `CON ${en.ussd.pinGuessable}\n${en.ussd.newPinChange}`,
        `CON ${en.ussd.repeatPin}`,
        `END ${en.ussd.pinChanged}`,
      ]);
      const customer = await customerOf(phone);
      expect(customer.pin_hash).not.toBe(hashBefore);
      expect(customer.pin_changed_at).not.toBeNull();
      // The correct old PIN reset the failed count.
      expect(customer.pin_failed_attempts).toBe(0);

      expect((await dial(svc.url, ['3', PIN], { phoneNumber: phone })).last).toBe(`CON ${en.ussd.wrongPin(2)}\n${en.ussd.enterPin}`);
      expect((await dial(svc.url, ['3', NEW_PIN], { phoneNumber: phone })).last).toMatch(new RegExp(`^CON ${en.ussd.myGold('0.0000')}\\n`));
    });
  });

  describe('My gold and Statement', () => {
    test('when a saver has bought and sold, then My gold shows grams, value at the sell price and what is pending, and the statement lists the movements', async () => {
      mockDaraja();
      const phone = nextPhone();
      await setPin(phone);
      const bought = await buy(phone, 1000, true); // 0.117647 g at 8,500/g
      const sold = await sell(phone, 300, true); // 0.036386 g at 8,245/g, rounded up
      const waitingSale = await sell(phone, 100, false); // 0.012129 g, payout accepted, no result yet
      const waitingBuy = await buy(phone, 500, false); // 0.058823 g reserved, not paid
      expect([bought.grams_ug, sold.grams_ug, waitingSale.grams_ug, waitingBuy.grams_ug]).toEqual([117_647, 36_386, 12_129, 58_823]);

      // 117,647 - 36,386 = 81,261 ug owned (the waiting sale is the saver's until paid), worth 669.99 at 8,245/g (rounded down).
      const mine = await dial(svc.url, ['3', PIN], { phoneNumber: phone });
      expect(mine.last).toBe(
        `CON ${[en.ussd.myGold('0.0812'), en.ussd.myGoldValue('669.99', '8,245'), en.ussd.pendingBuy('0.0588'), en.ussd.pendingSell('0.0121'), en.ussd.backHome].join('\n')}`,
      );

      const today = (await svc.db('transfers').where({ id: `buy-${bought.id}/posted` }).first('created_at')).created_at;
      const day = new Intl.DateTimeFormat('en-GB', { timeZone: 'Africa/Nairobi', day: '2-digit', month: '2-digit' }).format(today);
      const statement = await dial(svc.url, ['4', PIN], { phoneNumber: phone });
      expect(statement.last).toBe(
        `CON ${[en.ussd.statementTitle, en.ussd.statementRow(day, 'sell', '0.0363', '300'), en.ussd.statementRow(day, 'buy', '0.1176', '1,000'), en.ussd.statementSmsOption, en.ussd.back].join('\n')}`,
      );

      sms.length = 0;
      const sent = await dial(svc.url, ['4', PIN, '1'], { phoneNumber: phone });
      expect(sent.last).toBe(`END ${en.ussd.statementSent}`);
      await waitFor(() => Promise.resolve(sms.find((m) => m.form.get('message')?.startsWith(en.sms.statementTitle))), 'the statement SMS');
      const body = sms.find((m) => m.form.get('message')?.startsWith(en.sms.statementTitle))!.form.get('message');
      expect(body).toBe([en.sms.statementTitle, en.sms.statementRow(day, 'sell', '0.0363', '300'), en.sms.statementRow(day, 'buy', '0.1176', '1,000'), en.sms.statementBalance('0.0812')].join('\n'));
      expect(sms.find((m) => m.form.get('message') === body)!.form.get('to')).toBe(phone);
    });

    test('when a saver sells more than their gold is worth, then after the PIN they are told its worth and nothing is recorded', async () => {
      mockDaraja();
      const phone = nextPhone();
      await setPin(phone);
      await buy(phone, 200, true); // 0.023529 g, worth KES 193.99 at 8,245/g
      const orders = async () => Number((await svc.db('orders').where({ msisdn: msisdnOf(phone) }).count({ n: '*' }))[0]!.n);
      const before = await orders();
      const { screens } = await dial(svc.url, ['2', '500', '1111', PIN], { phoneNumber: phone });
      expect(screens[2]).toBe(`CON ${en.ussd.sellConfirm('500', '0.0606', '8,245')}`);
      // A wrong PIN on the sale counts like any other.
      expect(screens[3]).toBe(`CON ${en.ussd.wrongPin(2)}\n${en.ussd.sellConfirm('500', '0.0606', '8,245')}`);
      expect(screens[4]).toBe(`CON ${en.ussd.sellWorthOnly('193')}\n${en.ussd.sellAmount('10', '150,000')}`);
      expect(await orders()).toBe(before);
    });
  });

  describe('languages', () => {
    test('when Kiswahili is chosen on the first dial, then it is remembered for the next sessions and the SMS come in Kiswahili', async () => {
      mockDaraja();
      const phone = nextPhone();
      const first = await dial(svc.url, ['7'], { phoneNumber: phone });
      expect(first.screens[0]).toBe(`CON ${HOME_EN}\n${en.ussd.offerLanguage}`);
      expect(first.last).toBe(`CON ${sw.ussd.languageSaved}\n${HOME_SW}`);
      expect(await customerOf(phone)).toMatchObject({ language: 'sw' });
      expect((await customerOf(phone)).language_chosen_at).not.toBeNull();

      const next = await dial(svc.url, [], { phoneNumber: phone });
      expect(next.last).toBe(`CON ${HOME_SW}`);

      const stk: CapturedStk[] = [];
      mockStkPushAccepted(stk);
      const { sessionId, screens } = await dial(svc.url, ['1', '500', '1'], { phoneNumber: phone });
      expect(screens[2]).toBe(`CON ${sw.ussd.buyConfirm('500', '0.0588', '8,500')}`);
      expect(screens[3]).toBe(`END ${sw.ussd.buySubmitted('500')}`);
      const order = await svc.db('orders').where('source_key', 'like', `ussd:%:${sessionId}`).first();
      const payment = await waitFor(() => svc.db('stk_payments').where({ order_id: order.id }).whereNotNull('checkout_request_id').first(), 'the STK push');
      await postCallback(svc.url, stkCallbackBody({ checkoutRequestId: payment.checkout_request_id, resultCode: 0, amount: 500, receipt: 'SWK7RT61SV', phone: msisdnOf(phone) }));
      const receipt = await waitFor(() => Promise.resolve(sms.find((m) => m.form.get('to') === phone)), 'the receipt SMS');
      expect(receipt.form.get('message')).toBe(sw.sms.buyReceipt({ receipt: 'SWK7RT61SV', grams: '0.0588', kes: '500', price: '8,500', balance: '0.0588' }));

      // Back to English under My account (no PIN set yet: nothing to ask).
      const back = await dial(svc.url, ['6', '2', '1'], { phoneNumber: phone });
      expect(back.screens[1]).toBe(`CON ${sw.ussd.account(false)}`);
      expect(back.last).toBe(`CON ${en.ussd.languageSaved}\n${HOME_EN}`);
      expect((await dial(svc.url, [], { phoneNumber: phone })).last).toBe(`CON ${HOME_EN}`);
    });

    test('when a saver with a PIN changes the language, then the PIN is asked first', async () => {
      const phone = nextPhone();
      await setPin(phone);
      const { screens } = await dial(svc.url, ['6', '2', PIN, '2'], { phoneNumber: phone });
      expect(screens[2]).toBe(`CON ${en.ussd.enterPin}`);
      expect(screens[3]).toBe(`CON ${en.ussd.chooseLanguage}`);
      expect(screens[4]).toBe(`CON ${sw.ussd.languageSaved}\n${HOME_SW}`);
    });
  });

  describe('a dropped session', () => {
    test('when a session drops on the buy confirmation and the saver redials, then it offers to continue, at a fresh quote', async () => {
      const phone = nextPhone();
      await dial(svc.url, [], { phoneNumber: phone }); // the first dial, with its language offer, is behind us
      await dial(svc.url, ['1', '700'], { phoneNumber: phone });
      await withRedis(async (r) => {
        const pttl = await r.pttl(resumeKey(phone));
        expect(pttl).toBeGreaterThan(100_000);
        expect(pttl).toBeLessThanOrEqual(120_000);
        expect(JSON.parse((await r.get(resumeKey(phone)))!)).toEqual({ screen: 'buy.amount', history: ['home'], replay: '700' });
      });

      const { screens, last } = await dial(svc.url, ['8'], { phoneNumber: phone });
      expect(screens[0]).toBe(`CON ${HOME_EN}\n${en.ussd.offerResume}`);
      expect(last).toBe(`CON ${en.ussd.buyConfirm('700', '0.0823', '8,500')}`);

      // Ending the session ends the offer.
      const sessionId = newSessionId();
      await dial(svc.url, ['1', '700', '2'], { phoneNumber: phone, sessionId });
      expect(await withRedis((r) => r.exists(resumeKey(phone)))).toBe(0);
      expect((await dial(svc.url, [], { phoneNumber: phone })).last).toBe(`CON ${HOME_EN}`);
    });

    test('when a session drops on My gold, then continuing asks for the PIN again', async () => {
      const phone = nextPhone();
      await setPin(phone);
      await dial(svc.url, ['3', PIN], { phoneNumber: phone });
      const { screens } = await dial(svc.url, ['8', PIN], { phoneNumber: phone });
      expect(screens[1]).toBe(`CON ${en.ussd.enterPin}`);
      expect(screens[2]).toMatch(new RegExp(`^CON ${en.ussd.myGold('0.0000')}\\n`));
      const stored = await withRedis((r) => r.get(resumeKey(phone)));
      expect(containsPin(stored ?? '', PIN)).toBe(false);
    });
  });

  describe('POST /ussd/events', () => {
    const postEvent = (fields: Record<string, string>) =>
      fetch(`${svc.url}${USSD_EVENTS_PATH}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields) });

    test('when Africa\'s Talking reports the end of a session, then it is recorded once, with every PIN position scrubbed', async () => {
      const phone = nextPhone();
      const sessionId = newSessionId();
      await dial(svc.url, ['3', PIN, PIN, '0', '1', '1500'], { phoneNumber: phone, sessionId });
      const fields = {
        sessionId,
        serviceCode: svc.config.ussd.serviceCode,
        networkCode: '63902',
        phoneNumber: phone,
        status: 'Incomplete',
        input: `3*${PIN}*${PIN}*0*1*1500`,
        durationInMillis: '48213',
        cost: 'KES 0.0000',
        errorMessage: 'USER_TIMEOUT',
        hopsCount: '7',
        date: '2026-11-26 10:48:52',
      };
      expect((await postEvent(fields)).status).toBe(200);
      expect((await postEvent(fields)).status).toBe(200);
      const rows = await svc.db('ussd_events').where({ session_id: sessionId });
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({
        msisdn: msisdnOf(phone),
        status: 'Incomplete',
        input: '3*xxxx*xxxx*0*1*1500',
        duration_ms: 48213,
        cost: 'KES 0.0000',
        error_message: 'USER_TIMEOUT',
        hops_count: 7,
        network_code: '63902',
      });
    });

    test('when the session is unknown, then every 4-digit entry is scrubbed', async () => {
      const sessionId = newSessionId();
      expect((await postEvent({ sessionId, status: 'Failed', phoneNumber: nextPhone(), input: `2*1000*${PIN}` })).status).toBe(200);
      expect(await svc.db('ussd_events').where({ session_id: sessionId }).first('input', 'status')).toEqual({ input: '2*xxxx*xxxx', status: 'Failed' });
    });

    test('when the notification is not Africa\'s Talking\'s, then it is refused and nothing recorded', async () => {
      const sessionId = newSessionId();
      expect((await postEvent({ sessionId, status: 'Whatever', input: PIN })).status).toBe(400);
      expect(await svc.db('ussd_events').where({ session_id: sessionId })).toEqual([]);
    });
  });

  test('a PIN never reaches the logs, the stored sessions, job data or messages', async () => {
    const phone = nextPhone();
    const sessionId = newSessionId();
    await dial(svc.url, ['3', '5927', '5927', '0', '6', '1', '5927', '6143', '6143'], { phoneNumber: phone, sessionId });
    expect(await sessionJson(sessionId, phone)).not.toBeNull();
    const stored = [
      (await sessionJson(sessionId, phone))!,
      JSON.stringify(await svc.db('outbox').select('payload')),
      JSON.stringify(await svc.db('sms_messages').select('body')),
      JSON.stringify(await svc.db('ussd_events').select('input')),
      JSON.stringify(await svc.db('kv_store').select('value')),
    ];
    expect(logLines.length).toBeGreaterThan(10);
    for (const pin of [PIN, NEW_PIN, '5927', '6143', '1357', '1358', '1359', '4862']) {
      for (const text of stored) expect(containsPin(text, pin)).toBe(false);
      expect(logLines.filter((l) => containsPin(l, pin))).toEqual([]);
    }
  });
});

describe('gold price from an HTTP feed', () => {
  const FEED = 'https://prices.example.com';
  let answer: { status: number; body: unknown } = { status: 200, body: {} };
  let svc: TestService;
  beforeAll(async () => {
    nock(FEED).persist().get('/v1/gold').reply(() => [answer.status, answer.body]);
    answer = { status: 200, body: { buyKesPerGram: '9000.50', sellKesPerGram: '8700.25', asOf: new Date(Date.now() - 3_600_000).toISOString() } };
    svc = await startTestService({ PRICE_PROVIDER: 'http', PRICE_URL: `${FEED}/v1/gold`, PRICE_POLL_SECONDS: '1', PRICE_MAX_AGE_SECONDS: '600' });
    await fundPoolGrams(svc.db, 10);
  });
  afterEach(() => expectBooksBalanced(svc.db));
  afterAll(async () => {
    await svc.close();
    nock.cleanAll();
  });

  const stored = () => withRedis(async (r) => JSON.parse((await r.get(`${svc.config.queuePrefix}:prices:latest`)) ?? 'null'));

  test('when the feed\'s price is older than the maximum age, then prices, buying and selling are refused with a clear screen and nothing is recorded', async () => {
    await waitFor(async () => (await stored())?.buyCentsPerGram === 900_050, 'the first poll');
    const phone = nextPhone();
    await dial(svc.url, [], { phoneNumber: phone }); // past the first dial's language offer
    expect((await dial(svc.url, ['5'], { phoneNumber: phone })).last).toBe(`CON ${en.ussd.priceUnavailable}\n${HOME_EN}`);
    expect((await dial(svc.url, ['1', '500'], { phoneNumber: phone })).last).toBe(`CON ${en.ussd.priceUnavailable}\n${HOME_EN}`);
    expect(await svc.db('orders').count({ n: '*' })).toEqual([{ n: 0 }]);
  });

  test('when the feed answers a fresh price, then the menu shows it with when it was set and charges exactly it', async () => {
    const asOf = new Date(Date.now() - 60_000);
    answer = { status: 200, body: { buyKesPerGram: '9000.50', sellKesPerGram: '8700.25', asOf: asOf.toISOString() } };
    await waitFor(async () => (await stored())?.asOf === asOf.toISOString(), 'the fresh price');
    const phone = nextPhone();
    const day = new Intl.DateTimeFormat('en-GB', { timeZone: 'Africa/Nairobi', day: '2-digit', month: '2-digit' }).format(asOf);
    expect((await dial(svc.url, ['5'], { phoneNumber: phone })).last).toBe(`CON ${en.ussd.prices('9,000.50', '8,700.25', `${day} ${eatTime(asOf)}`)}\n${en.ussd.backHome}`);
    expect((await dial(svc.url, ['1', '900'], { phoneNumber: phone })).last).toBe(`CON ${en.ussd.buyConfirm('900', '0.0999', '9,000.50')}`);
  });

  test('when the feed answers something unusable, then the poll says why and the last good price stays', async () => {
    const feed = svc.running.services.prices as HttpPriceFeed;
    const good = await stored();
    expect(good).not.toBeNull();
    for (const [status, body, why] of [
      [200, { buyKesPerGram: 9000.5, sellKesPerGram: '8700.25' }, 'expected {"buyKesPerGram"'], // numbers are floats: refused
      [200, { buyKesPerGram: '8000', sellKesPerGram: '8700.25' }, 'the sell price is above the buy price'],
      [200, { buyKesPerGram: '9000.505', sellKesPerGram: '8700.25' }, 'at most 2 decimals'],
      [200, '<html>busy</html>', 'expected {"buyKesPerGram"'],
      [503, 'down', 'HTTP 503'],
    ] as const) {
      answer = { status, body };
      await expect(feed.poll()).rejects.toThrow(why);
      expect(await stored()).toEqual(good);
    }
  });
});
