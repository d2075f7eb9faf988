import { en } from '../../src/i18n/en';
import { eatTime } from '../../src/lib/eat-time';
import { MAX_USSD_INPUTS, MAX_USSD_TEXT_CHARS } from '../../src/ussd/handle-ussd';
import { sessionKey } from '../../src/ussd/session-store';
import { expectBooksBalanced, fundPoolGrams, startTestService, waitFor, withRedis, type TestService } from '../support/harness';
import { dial, newSessionId, ussd } from '../support/http';
import { msisdnOf, nextPhone } from '../support/phones';

/**
 * The wallet PIN against someone who guesses: concurrent guesses cannot get past the lock, one request
 * cannot carry several guesses, and a `text` longer than any real walk is refused before anything is
 * read or hashed. Also: a USSD session belongs to its phone and session id together.
 */

const PIN = '4826';
const WRONG = ['1357', '1358', '1359', '2468', '2469', '3579', '3580', '4680', '4681', '5791'];

describe('wallet PIN and USSD session safety', () => {
  let svc: TestService;
  beforeAll(async () => {
    // Web only: orders placed here are looked at, never pushed (no job runs, no vendor is called).
    svc = await startTestService({ ROLE: 'web', PIN_LOCK_SECONDS: '600' });
    await fundPoolGrams(svc.db, 10);
  });
  afterEach(async () => {
    await expectBooksBalanced(svc.db);
  });
  afterAll(() => svc.close());

  const customerOf = (phone: string) => svc.db('customers').where({ msisdn: msisdnOf(phone) }).first();
  /** One request that opens My gold and types a PIN: exactly one PIN check. */
  const guess = (phone: string, pin: string) => ussd(svc.url, { sessionId: newSessionId(), text: `3*${pin}`, phoneNumber: phone });

  async function setPin(phone: string) {
    const { screens } = await dial(svc.url, ['3', PIN, PIN, '00'], { phoneNumber: phone });
    expect(screens[3]).toMatch(new RegExp(`^CON ${en.ussd.pinSaved}\\n`));
  }

  test('when 10 wrong PINs arrive at once, then the third locks the wallet, the other 7 are refused unjudged, and one SMS warns', async () => {
    const phone = nextPhone();
    await setPin(phone);
    const replies = await Promise.all(WRONG.map((pin) => guess(phone, pin)));
    const customer = await customerOf(phone);
    const until = new Date(customer.pin_locked_until);
    expect(until.getTime()).toBeGreaterThan(Date.now() + 500_000);
    const wrong = replies.filter((r) => r.text.startsWith('CON ') && r.text.includes(en.ussd.enterPin));
    const locked = replies.filter((r) => r.text.includes(en.ussd.walletLocked(eatTime(until))));
    // Two are judged wrong, the third locks; every later one is refused unjudged (locked at the PIN
    // screen, or already on the main menu, where My gold is not offered while locked).
    expect(wrong).toHaveLength(2);
    expect(locked.length).toBeGreaterThanOrEqual(1);
    expect(replies.filter((r) => r.text.includes(en.ussd.myGold('0.0000')))).toEqual([]);
    expect(customer.pin_failed_attempts).toBe(0);
    expect(await svc.db('sms_messages').where({ msisdn: msisdnOf(phone), purpose: 'pin_locked' }).count({ n: '*' })).toEqual([{ n: 1 }]);
    // The right PIN is refused while the lock lasts.
    expect((await guess(phone, PIN)).text).not.toContain(en.ussd.myGold('0.0000'));
    expect((await dial(svc.url, ['3'], { phoneNumber: phone })).last).toContain(en.ussd.walletLocked(eatTime(until)));
    expect((await customerOf(phone)).pin_locked_until).toEqual(customer.pin_locked_until);
  });

  test('when the wallet is locked while a right PIN is being checked, then that right PIN is refused (the lock is read as the attempt is counted)', async () => {
    const phone = nextPhone();
    await setPin(phone);
    const customerId = (await customerOf(phone)).id;
    const until = new Date(Date.now() + 600_000);
    // Stands in for concurrent wrong guesses: holds the customer row while it locks the wallet.
    const trx = await svc.db.transaction();
    try {
      await trx('customers').where({ id: customerId }).forUpdate().first('id');
      let answered = false;
      const pending = guess(phone, PIN).then((r) => ((answered = true), r));
      // The check must wait for the row (it counts the attempt in the same UPDATE that reads the lock);
      // a check that read the lock earlier and never again would answer without waiting.
      await waitFor(async () => answered || (await waitingOnLock(svc)), 'the PIN check to answer or wait for the row');
      await trx('customers').where({ id: customerId }).update({ pin_locked_until: until });
      await trx.commit();
      const reply = await pending;
      expect(reply.text).toContain(en.ussd.walletLocked(eatTime(until)));
    } finally {
      if (!trx.isCompleted()) await trx.rollback();
    }
  });

  test('when one request carries several PIN entries, then at most one is checked and the session ends', async () => {
    const phone = nextPhone();
    await setPin(phone);
    const sessionId = newSessionId();
    const reply = await ussd(svc.url, { sessionId, text: `3*${WRONG[0]}*${WRONG[1]}*${WRONG[2]}`, phoneNumber: phone });
    expect(reply.text).toBe(`END ${en.ussd.invalidRequest}`);
    const customer = await customerOf(phone);
    expect(customer.pin_failed_attempts).toBe(1);
    expect(customer.pin_locked_until).toBeNull();
    // The session is over: the same text again changes nothing.
    expect((await ussd(svc.url, { sessionId, text: `3*${WRONG[0]}*${WRONG[1]}*${WRONG[2]}*${WRONG[3]}`, phoneNumber: phone })).text).toBe(`END ${en.ussd.invalidRequest}`);
    expect((await customerOf(phone)).pin_failed_attempts).toBe(1);
  });

  test.each([
    ['more inputs than any real walk', Array.from({ length: MAX_USSD_INPUTS + 1 }, () => '0').join('*')],
    ['more characters than any real walk', `3*${'1234*'.repeat(Math.ceil(MAX_USSD_TEXT_CHARS / 5))}1234`],
  ])('when `text` has %s, then the session ends at once and nothing is read, created or hashed', async (_what, text) => {
    const phone = nextPhone();
    const sessionId = newSessionId();
    const reply = await ussd(svc.url, { sessionId, text, phoneNumber: phone });
    expect(reply.text).toBe(`END ${en.ussd.invalidRequest}`);
    expect(await customerOf(phone)).toBeUndefined();
    await withRedis(async (r) => expect(await r.get(sessionKey(svc.config.queuePrefix, msisdnOf(phone), sessionId))).toBeNull());
  });

  test('when a second phone sends the same session id, then it gets a session of its own and the first phone\'s session and order are untouched', async () => {
    const [a, b] = [nextPhone(), nextPhone()];
    const sessionId = newSessionId();
    await dial(svc.url, ['1', '100'], { phoneNumber: a, sessionId });
    const before = await withRedis((r) => r.get(sessionKey(svc.config.queuePrefix, msisdnOf(a), sessionId)));
    // Phone B reuses A's session id: it starts at the main menu, not on A's confirm screen.
    const bHome = await ussd(svc.url, { sessionId, text: '', phoneNumber: b });
    expect(bHome.text).toMatch(new RegExp(`^CON ${en.ussd.homeTitle}`));
    const bConfirm = await ussd(svc.url, { sessionId, text: '1*200*1', phoneNumber: b });
    expect(bConfirm.text).toMatch(/^END /);
    expect(await withRedis((r) => r.get(sessionKey(svc.config.queuePrefix, msisdnOf(a), sessionId)))).toBe(before);
    // A confirms its own KES 100; B's KES 200 is B's own order.
    expect((await ussd(svc.url, { sessionId, text: '1*100*1', phoneNumber: a })).text).toMatch(/^END /);
    const orders = await svc.db('orders').where('source_key', 'like', `ussd:%:${sessionId}`).orderBy('amount_cents');
    expect(orders.map((o) => [o.msisdn, o.amount_cents])).toEqual([
      [msisdnOf(a), 10_000],
      [msisdnOf(b), 20_000],
    ]);
  });
});

/** True while some connection of this database waits for a row lock. */
async function waitingOnLock(svc: TestService): Promise<boolean> {
  const { rows } = await svc.db.raw(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`);
  return rows[0].n > 0;
}
