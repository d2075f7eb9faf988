import { catalogFor, LANGUAGES, type Language } from '../../src/i18n';
import type { Catalog } from '../../src/i18n/en';
import {
  formatReply,
  resume,
  snapshotOf,
  startMenu,
  step,
  type Effect,
  type MenuContext,
  type MenuState,
  type Outcome,
  type Profile,
  type Snapshot,
  type StepResult,
} from '../../src/ussd/machine';
import { screens } from '../../src/ussd/screens';

const NOW = Date.parse('2026-11-26T08:30:00Z'); // 11:30 in Nairobi
const ctx: MenuContext = {
  now: NOW,
  msisdn: '254712340583',
  buyLimits: { minKes: 10, maxKes: 150_000 },
  sellLimits: { minKes: 10, maxKes: 150_000 },
  sellEnabled: true,
  quoteTtlMs: 60_000,
};
const QUOTE = { buyCentsPerGram: 850_000, sellCentsPerGram: 824_500, asOf: '2026-11-26T06:05:00Z' };
const GOOD_PIN = '4826';

type Fake = (effect: Effect) => Outcome;

/** A stand-in for the database and the price feed: what each effect would answer. */
const everydayWorld: Fake = (e) => {
  switch (e.type) {
    case 'loadQuote':
      return { type: 'loadQuote', quote: QUOTE };
    case 'loadWallet':
      return { type: 'loadWallet', wallet: { postedUg: 1_234_567, pendingInUg: 58_823, pendingOutUg: 0, sellCentsPerGram: QUOTE.sellCentsPerGram } };
    case 'loadStatement':
      return {
        type: 'loadStatement',
        rows: [
          { at: '2026-11-25T09:00:00Z', kind: 'sell', gramsUg: 60_643, kesCents: 50_000 },
          { at: '2026-11-24T09:00:00Z', kind: 'buy', gramsUg: 1_176_470, kesCents: 1_000_000 },
        ],
      };
    case 'sendStatement':
      return { type: 'sendStatement' };
    case 'verifyPin':
      return e.pin === GOOD_PIN ? { type: 'verifyPin', result: 'ok' } : { type: 'verifyPin', result: 'wrong_pin', attemptsLeft: 2 };
    case 'stagePin':
      return { type: 'stagePin' };
    case 'savePin':
      return { type: 'savePin', result: e.pin === GOOD_PIN || e.pin === '3971' ? 'saved' : 'mismatch' };
    case 'setLanguage':
      return { type: 'setLanguage', language: e.language };
    case 'placeBuyOrder':
      return { type: 'placeBuyOrder', result: 'placed' };
    case 'placeSellOrder':
      return e.pin === GOOD_PIN ? { type: 'placeSellOrder', result: 'placed' } : { type: 'placeSellOrder', result: 'wrong_pin', attemptsLeft: 2 };
  }
};

function profile(language: Language, p: Partial<Profile> = {}): Profile {
  return { language, offerLanguage: false, hasPin: false, lockedUntil: null, ...p };
}

/** Does what handle-ussd.ts does: step, perform each effect (here: the fake), feed the outcome back. */
function settle(r: StepResult, world: Fake, effects: Effect[], c: MenuContext): StepResult & { reply: NonNullable<StepResult['reply']> } {
  let result = r;
  for (let n = 0; result.effect; n++) {
    if (n > 4) throw new Error('effects did not settle');
    effects.push(result.effect);
    result = resume(screens, result.state, world(result.effect), c);
  }
  return result as StepResult & { reply: NonNullable<StepResult['reply']> };
}

interface Run {
  profile?: Partial<Profile>;
  world?: Partial<Record<Effect['type'], Outcome>>;
  resumeAt?: Snapshot;
  ctx?: Partial<MenuContext>;
}

function walk(language: Language, inputs: string[], run: Run = {}) {
  const c = { ...ctx, ...run.ctx };
  const world: Fake = (e) => run.world?.[e.type] ?? everydayWorld(e);
  const effects: Effect[] = [];
  let result = settle(startMenu(screens, c, profile(language, run.profile), run.resumeAt), world, effects, c);
  const replies = [formatReply(result.reply)];
  for (const input of inputs) {
    result = settle(step(screens, result.state, input, c), world, effects, c);
    replies.push(formatReply(result.reply));
    if (result.reply.end) break;
  }
  return { state: result.state, replies, last: replies[replies.length - 1]!, effects };
}

const WITH_PIN: Run = { profile: { hasPin: true } };
const home = (t: Catalog) => `${t.ussd.homeTitle}\n${t.ussd.homeMenu}`;
const con = (...lines: string[]) => `CON ${lines.join('\n')}`;
/** The main menu under a reason line: the title gives way when both do not fit. */
const homeWith = (t: Catalog, notice: string) => (con(notice, home(t)).length <= 160 ? con(notice, home(t)) : con(notice, t.ussd.homeMenu));
const end = (text: string) => `END ${text}`;

describe.each(LANGUAGES.map((l) => [l] as const))('USSD menu machine in %s', (language) => {
  const t = catalogFor(language);
  const tw = catalogFor(language === 'en' ? 'sw' : 'en');

  test.each<[string, string[], Run, (t: Catalog) => string, string]>([
    // main menu, navigation, invalid input
    ['the main menu', [], {}, (t) => con(home(t)), 'home'],
    ['an invalid choice re-shows the menu with a reason', ['9'], {}, (t) => con(t.ussd.invalidChoice, home(t)), 'home'],
    ['the language offer of a first dial', [], { profile: { offerLanguage: true } }, (t) => con(home(t), t.ussd.offerLanguage), 'home'],
    ['7 without the offer is invalid', ['7'], {}, (t) => con(t.ussd.invalidChoice, home(t)), 'home'],
    ['8 without a dropped session is invalid', ['8'], {}, (t) => con(t.ussd.invalidChoice, home(t)), 'home'],
    // buy
    ['buy: the amount', ['1'], {}, (t) => con(t.ussd.buyAmount('10', '150,000')), 'buy.amount'],
    ['buy: the amount names the Paybill when C2B is on', ['1'], { ctx: { paybill: '174379' } }, (t) => con(t.ussd.buyAmountPaybill('10', '150,000', '174379')), 'buy.amount'],
    ['buy: the Paybill line stays under a reason', ['1', '9'], { ctx: { paybill: '174379' } }, (t) => con(t.ussd.amountTooSmall('10'), t.ussd.buyAmountPaybill('10', '150,000', '174379')), 'buy.amount'],
    ['buy: the quote', ['1', '500'], {}, (t) => con(t.ussd.buyConfirm('500', '0.0588', '8,500')), 'buy.confirm'],
    ['buy: not a number', ['1', 'abc'], {}, (t) => con(t.ussd.amountNotNumber, t.ussd.buyAmount('10', '150,000')), 'buy.amount'],
    ['buy: negative', ['1', '-5'], {}, (t) => con(t.ussd.amountNotNumber, t.ussd.buyAmount('10', '150,000')), 'buy.amount'],
    ['buy: cents', ['1', '10.5'], {}, (t) => con(t.ussd.amountNotNumber, t.ussd.buyAmount('10', '150,000')), 'buy.amount'],
    ['buy: exponent', ['1', '1e5'], {}, (t) => con(t.ussd.amountNotNumber, t.ussd.buyAmount('10', '150,000')), 'buy.amount'],
    ['buy: below the minimum', ['1', '9'], {}, (t) => con(t.ussd.amountTooSmall('10'), t.ussd.buyAmount('10', '150,000')), 'buy.amount'],
    ['buy: above the maximum', ['1', '150001'], {}, (t) => con(t.ussd.amountTooLarge('150,000'), t.ussd.buyAmount('10', '150,000')), 'buy.amount'],
    ['buy: 0 on the amount goes back', ['1', '0'], {}, (t) => con(home(t)), 'home'],
    ['buy: 0 on the quote goes back', ['1', '500', '0'], {}, (t) => con(t.ussd.buyAmount('10', '150,000')), 'buy.amount'],
    ['buy: 00 goes home', ['1', '500', '00'], {}, (t) => con(home(t)), 'home'],
    ['buy: invalid confirm choice', ['1', '500', '3'], {}, (t) => con(t.ussd.invalidChoice, t.ussd.buyConfirm('500', '0.0588', '8,500')), 'buy.confirm'],
    ['buy: confirmed', ['1', '500', '1'], {}, (t) => end(t.ussd.buySubmitted('500')), 'buy.confirm'],
    ['buy: cancelled', ['1', '500', '2'], {}, (t) => end(t.ussd.buyCancelled), 'buy.confirm'],
    ['buy: stale price', ['1', '500'], { world: { loadQuote: { type: 'loadQuote', quote: null } } }, (t) => homeWith(t, t.ussd.priceUnavailable), 'home'],
    ['buy: daily limit', ['1', '500', '1'], { world: { placeBuyOrder: { type: 'placeBuyOrder', result: 'daily_limit', limitKes: 300_000, remainingKes: 200 } } }, (t) => end(t.ussd.buyDailyLimit('300,000', '200')), 'buy.confirm'],
    ['buy: a payment pending', ['1', '500', '1'], { world: { placeBuyOrder: { type: 'placeBuyOrder', result: 'payment_pending' } } }, (t) => end(t.ussd.paymentPending), 'buy.confirm'],
    ['buy: too many pushes', ['1', '500', '1'], { world: { placeBuyOrder: { type: 'placeBuyOrder', result: 'too_many_payments', retryMinutes: 12 } } }, (t) => end(t.ussd.tooManyPayments('12')), 'buy.confirm'],
    // sell
    ['sell without a PIN: set one first', ['2'], {}, (t) => con(t.ussd.newPin), 'pin.new'],
    ['sell: first PIN set, then the amount', ['2', GOOD_PIN, GOOD_PIN], {}, (t) => con(t.ussd.pinSaved, t.ussd.sellAmount('10', '150,000')), 'sell.amount'],
    ['sell with a PIN: the amount', ['2'], WITH_PIN, (t) => con(t.ussd.sellAmount('10', '150,000')), 'sell.amount'],
    ['sell: the quote (grams rounded up)', ['2', '500'], WITH_PIN, (t) => con(t.ussd.sellConfirm('500', '0.0606', '8,245')), 'sell.confirm'],
    ['sell: below the minimum', ['2', '5'], WITH_PIN, (t) => con(t.ussd.amountTooSmall('10'), t.ussd.sellAmount('10', '150,000')), 'sell.amount'],
    ['sell: not a PIN', ['2', '500', '12'], WITH_PIN, (t) => con(t.ussd.pinFormat, t.ussd.sellConfirm('500', '0.0606', '8,245')), 'sell.confirm'],
    ['sell: confirmed with the PIN', ['2', '500', GOOD_PIN], WITH_PIN, (t) => end(t.ussd.sellSubmitted('500')), 'sell.confirm'],
    ['sell: wrong PIN', ['2', '500', '4827'], WITH_PIN, (t) => con(t.ussd.wrongPin(2), t.ussd.sellConfirm('500', '0.0606', '8,245')), 'sell.confirm'],
    ['sell: third wrong PIN locks', ['2', '500', '4827'], { ...WITH_PIN, world: { placeSellOrder: { type: 'placeSellOrder', result: 'locked', until: NOW + 1800_000 } } }, (t) => end(t.ussd.walletLocked('12:00')), 'sell.confirm'],
    ['sell: more than the gold is worth', ['2', '500', GOOD_PIN], { ...WITH_PIN, world: { placeSellOrder: { type: 'placeSellOrder', result: 'insufficient_gold', worthKes: 320 } } }, (t) => con(t.ussd.sellWorthOnly('320'), t.ussd.sellAmount('10', '150,000')), 'sell.amount'],
    ['sell: no gold at all', ['2', '500', GOOD_PIN], { ...WITH_PIN, world: { placeSellOrder: { type: 'placeSellOrder', result: 'insufficient_gold', worthKes: 0 } } }, (t) => homeWith(t, t.ussd.sellNoGold), 'home'],
    ['sell: daily limit', ['2', '500', GOOD_PIN], { ...WITH_PIN, world: { placeSellOrder: { type: 'placeSellOrder', result: 'daily_limit', limitKes: 150_000, remainingKes: 0 } } }, (t) => end(t.ussd.sellDailyLimit('150,000', '0')), 'sell.confirm'],
    ['sell: switched off', ['2'], { ctx: { sellEnabled: false } }, (t) => end(t.ussd.sellUnavailable), 'home'],
    ['sell: stale price', ['2', '500'], { ...WITH_PIN, world: { loadQuote: { type: 'loadQuote', quote: null } } }, (t) => homeWith(t, t.ussd.priceUnavailable), 'home'],
    ['sell: locked wallet told at once', ['2'], { profile: { hasPin: true, lockedUntil: NOW + 600_000 } }, (t) => homeWith(t, t.ussd.walletLocked('11:40')), 'home'],
    // PIN gate and first PIN
    ['my gold asks the PIN', ['3'], WITH_PIN, (t) => con(t.ussd.enterPin), 'pin.enter'],
    ['my gold: not 4 digits', ['3', '12345'], WITH_PIN, (t) => con(t.ussd.pinFormat, t.ussd.enterPin), 'pin.enter'],
    ['my gold: wrong PIN', ['3', '1111'], WITH_PIN, (t) => con(t.ussd.wrongPin(2), t.ussd.enterPin), 'pin.enter'],
    ['my gold: third wrong PIN', ['3', '1111'], { ...WITH_PIN, world: { verifyPin: { type: 'verifyPin', result: 'locked', until: NOW + 1800_000 } } }, (t) => end(t.ussd.walletLocked('12:00')), 'pin.enter'],
    ['my gold: locked wallet told at once', ['3'], { profile: { hasPin: true, lockedUntil: NOW + 60_000 } }, (t) => homeWith(t, t.ussd.walletLocked('11:31')), 'home'],
    ['my gold: balance, value at the sell price, pending buy', ['3', GOOD_PIN], WITH_PIN,
      (t) => con(t.ussd.myGold('1.2345'), t.ussd.myGoldValue('10,179', '8,245'), t.ussd.pendingBuy('0.0588'), t.ussd.backHome), 'mygold'],
    ['my gold: without a price', ['3', GOOD_PIN], { ...WITH_PIN, world: { loadWallet: { type: 'loadWallet', wallet: { postedUg: 0, pendingInUg: 0, pendingOutUg: 2_000_000, sellCentsPerGram: null } } } },
      (t) => con(t.ussd.myGold('0.0000'), t.ussd.myGoldNoValue, t.ussd.pendingSell('2.0000'), t.ussd.backHome), 'mygold'],
    ['my gold: back skips the PIN screen', ['3', GOOD_PIN, '0'], WITH_PIN, (t) => con(home(t)), 'home'],
    ['my gold: other input', ['3', GOOD_PIN, '5'], WITH_PIN, (t) => con(t.ussd.invalidChoice, t.ussd.myGold('1.2345'), t.ussd.myGoldValue('10,179', '8,245'), t.ussd.pendingBuy('0.0588'), t.ussd.backHome), 'mygold'],
    ['my gold without a PIN: create one', ['3'], {}, (t) => con(t.ussd.newPin), 'pin.new'],
    ['first PIN: not 4 digits', ['3', '12a4'], {}, (t) => con(t.ussd.pinFormat, t.ussd.newPin), 'pin.new'],
    ['first PIN: all the same digit', ['3', '7777'], {}, (t) => con(t.ussd.pinGuessable, t.ussd.newPin), 'pin.new'],
    ['first PIN: a run up', ['3', '0123'], {}, (t) => con(t.ussd.pinGuessable, t.ussd.newPin), 'pin.new'],
    ['first PIN: a run down', ['3', '9876'], {}, (t) => con(t.ussd.pinGuessable, t.ussd.newPin), 'pin.new'],
    ['first PIN: the last digits of the phone number', ['3', '0583'], {}, (t) => con(t.ussd.pinGuessable, t.ussd.newPin), 'pin.new'],
    ['first PIN: repeat', ['3', GOOD_PIN], {}, (t) => con(t.ussd.repeatPin), 'pin.repeat'],
    ['first PIN: mismatch starts again', ['3', GOOD_PIN, '4862'], {}, (t) => con(t.ussd.pinMismatch, t.ussd.newPin), 'pin.new'],
    ['first PIN: set, then my gold', ['3', GOOD_PIN, GOOD_PIN], {}, (t) => con(t.ussd.pinSaved, t.ussd.myGold('1.2345'), t.ussd.myGoldValue('10,179', '8,245'), t.ussd.pendingBuy('0.0588'), t.ussd.backHome), 'mygold'],
    ['first PIN: 0 goes back', ['3', '0'], {}, (t) => con(home(t)), 'home'],
    // statement
    ['statement', ['4', GOOD_PIN], WITH_PIN, (t) => con(t.ussd.statementTitle, t.ussd.statementRow('25/11', 'sell', '0.0606', '500'), t.ussd.statementRow('24/11', 'buy', '1.1764', '10,000'), t.ussd.statementSmsOption, t.ussd.back), 'statement'],
    ['statement by SMS', ['4', GOOD_PIN, '1'], WITH_PIN, (t) => end(t.ussd.statementSent), 'statement'],
    ['statement: empty', ['4', GOOD_PIN], { ...WITH_PIN, world: { loadStatement: { type: 'loadStatement', rows: [] } } }, (t) => con(t.ussd.statementEmpty, t.ussd.back), 'statement'],
    ['statement: nothing to send when empty', ['4', GOOD_PIN, '1'], { ...WITH_PIN, world: { loadStatement: { type: 'loadStatement', rows: [] } } }, (t) => con(t.ussd.invalidChoice, t.ussd.statementEmpty, t.ussd.back), 'statement'],
    // gold price
    ['gold price', ['5'], {}, (t) => con(t.ussd.prices('8,500', '8,245', '26/11 09:05'), t.ussd.backHome), 'prices'],
    ['gold price: stale', ['5'], { world: { loadQuote: { type: 'loadQuote', quote: null } } }, (t) => homeWith(t, t.ussd.priceUnavailable), 'home'],
    ['gold price: 0 goes back', ['5', '0'], {}, (t) => con(home(t)), 'home'],
    // my account
    ['my account without a PIN', ['6'], {}, (t) => con(t.ussd.account(false)), 'account'],
    ['my account with a PIN', ['6'], WITH_PIN, (t) => con(t.ussd.account(true)), 'account'],
    ['my account: invalid', ['6', '3'], WITH_PIN, (t) => con(t.ussd.invalidChoice, t.ussd.account(true)), 'account'],
    ['set PIN from my account', ['6', '1', GOOD_PIN, GOOD_PIN], {}, (t) => con(t.ussd.pinSaved, t.ussd.account(true)), 'account'],
    ['change PIN: the old one first', ['6', '1'], WITH_PIN, (t) => con(t.ussd.enterPin), 'pin.enter'],
    ['change PIN: then the new one', ['6', '1', GOOD_PIN], WITH_PIN, (t) => con(t.ussd.newPinChange), 'pin.new'],
    ['change PIN: repeat it', ['6', '1', GOOD_PIN, '3971'], WITH_PIN, (t) => con(t.ussd.repeatPin), 'pin.repeat'],
    ['change PIN: done', ['6', '1', GOOD_PIN, '3971', '3971'], WITH_PIN, (t) => end(t.ussd.pinChanged), 'pin.repeat'],
    ['change PIN: wrong old PIN', ['6', '1', '1111'], WITH_PIN, (t) => con(t.ussd.wrongPin(2), t.ussd.enterPin), 'pin.enter'],
    ['change PIN: back from the PIN returns to my account', ['6', '1', '0'], WITH_PIN, (t) => con(t.ussd.account(true)), 'account'],
    ['language without a PIN', ['6', '2'], {}, (t) => con(t.ussd.chooseLanguage), 'account.language'],
    ['language with a PIN asks it', ['6', '2'], WITH_PIN, (t) => con(t.ussd.enterPin), 'pin.enter'],
    ['language: invalid', ['6', '2', '3'], {}, (t) => con(t.ussd.invalidChoice, t.ussd.chooseLanguage), 'account.language'],
    ['language: English', ['6', '2', '1'], {}, () => con(catalogFor('en').ussd.languageSaved, home(catalogFor('en'))), 'home'],
    ['language: Kiswahili', ['6', '2', GOOD_PIN, '2'], WITH_PIN, () => con(catalogFor('sw').ussd.languageSaved, home(catalogFor('sw'))), 'home'],
    // a dropped session
    ['resume offered', [], { resumeAt: { screen: 'buy.amount', history: ['home'] } }, (t) => con(home(t), t.ussd.offerResume), 'home'],
    ['resume the buy amount', ['8'], { resumeAt: { screen: 'buy.amount', history: ['home'] } }, (t) => con(t.ussd.buyAmount('10', '150,000')), 'buy.amount'],
    ['resume a confirm: the amount replayed at a fresh quote', ['8'], { resumeAt: { screen: 'buy.amount', history: ['home'], replay: '500' } }, (t) => con(t.ussd.buyConfirm('500', '0.0588', '8,500')), 'buy.confirm'],
    ['resume behind the PIN asks it', ['8'], { ...WITH_PIN, resumeAt: { screen: 'statement', history: ['home'] } }, (t) => con(t.ussd.enterPin), 'pin.enter'],
    ['resume behind the PIN, PIN given', ['8', GOOD_PIN, '0'], { ...WITH_PIN, resumeAt: { screen: 'mygold', history: ['home'] } }, (t) => con(home(t)), 'home'],
  ])('%s', (_name, inputs, run, expected, screen) => {
    const { last, state } = walk(language, inputs, run);
    expect(last).toBe(expected(t));
    expect(state.screen).toBe(screen);
  });

  test('choosing the offered language switches the menu to it and stops offering it', () => {
    const { last, state, effects } = walk(language, ['7'], { profile: { offerLanguage: true } });
    const other = language === 'en' ? 'sw' : 'en';
    expect(effects).toEqual([{ type: 'setLanguage', language: other }]);
    expect(last).toBe(con(tw.ussd.languageSaved, home(tw)));
    expect(state.profile).toMatchObject({ language: other, offerLanguage: false });
  });

  test('confirming a buy asks for exactly one order at the quoted price', () => {
    const { effects } = walk(language, ['1', '500', '1']);
    expect(effects).toEqual([{ type: 'loadQuote' }, { type: 'placeBuyOrder', amountKes: 500, priceCentsPerGram: 850_000, gramsUg: 58_823, quotedAt: NOW }]);
  });

  test('cancelling a buy asks for nothing beyond the quote', () => {
    expect(walk(language, ['1', '500', '2']).effects).toEqual([{ type: 'loadQuote' }]);
  });

  test('confirming a sale carries the PIN to the effect only, at the quoted price, grams rounded up', () => {
    const { effects, state } = walk(language, ['2', '500', GOOD_PIN], WITH_PIN);
    expect(effects).toEqual([{ type: 'loadQuote' }, { type: 'placeSellOrder', pin: GOOD_PIN, amountKes: 500, priceCentsPerGram: 824_500, gramsUg: 60_643, quotedAt: NOW }]);
    expect(JSON.stringify(state)).not.toContain(GOOD_PIN);
  });

  test('no PIN ever reaches the menu state', () => {
    for (const inputs of [['3', GOOD_PIN, GOOD_PIN], ['6', '1', GOOD_PIN, '3971', '3971'], ['4', GOOD_PIN], ['3', '4827']]) {
      const { state } = walk(language, inputs, inputs[0] === '3' && inputs.length === 3 ? {} : WITH_PIN);
      for (const pin of [GOOD_PIN, '3971', '4827']) expect(JSON.stringify(state)).not.toContain(pin);
    }
  });

  test('the first PIN is for a wallet without one; a changed PIN is not', () => {
    expect(walk(language, ['3', GOOD_PIN, GOOD_PIN]).effects).toContainEqual({ type: 'savePin', pin: GOOD_PIN, firstPin: true });
    expect(walk(language, ['6', '1', GOOD_PIN, '3971', '3971'], WITH_PIN).effects).toContainEqual({ type: 'savePin', pin: '3971', firstPin: false });
  });
});

describe('where a dropped session continues', () => {
  const at = (inputs: string[], run: Run = {}) => {
    const { state, replies } = walk('en', inputs, run);
    return snapshotOf(screens, state, { end: replies[replies.length - 1]!.startsWith('END'), text: '' });
  };

  test.each<[string, string[], Run, Snapshot | null | undefined]>([
    ['home: nothing to continue', [], {}, null],
    ['an amount screen', ['1'], {}, { screen: 'buy.amount', history: ['home'] }],
    ['a buy confirm: its amount is replayed for a fresh quote', ['1', '700'], {}, { screen: 'buy.amount', history: ['home'], replay: '700' }],
    ['a sell confirm likewise', ['2', '900'], WITH_PIN, { screen: 'sell.amount', history: ['home'], replay: '900' }],
    ['a PIN screen keeps what was recorded before', ['3'], WITH_PIN, undefined],
    ['my gold', ['3', GOOD_PIN], WITH_PIN, { screen: 'mygold', history: ['home'] }],
    ['an ended session: nothing', ['1', '500', '2'], {}, null],
  ])('%s', (_name, inputs, run, expected) => {
    expect(at(inputs, run)).toEqual(expected);
  });
});

const GSM7 = /^[A-Za-z0-9 \n@£$¥èéùìòÇØøÅå_^{}\\[~\]|€ÆæßÉ!"#¤%&'()*+,\-./:;<=>?¡ÄÖÑÜ§¿äöñüà]*$/;

describe('every screen fits 160 characters of plain GSM-7, in both languages', () => {
  // Ten times today's price, and more gold than any saver holds (9,999.9999 g is worth about KES 85 million today).
  const BIG_QUOTE = { buyCentsPerGram: 9_999_999, sellCentsPerGram: 9_999_998, asOf: '2026-12-31T20:59:00Z' };
  const BIG = 9_999_999_999;
  const bigRows = Array.from({ length: 5 }, (_, i) => ({ at: `2026-12-${21 + i}T10:00:00Z`, kind: i % 2 === 0 ? ('sell' as const) : ('buy' as const), gramsUg: BIG, kesCents: 25_000_000 }));
  /** The largest numbers each effect could bring back, and every kind of refusal (chosen by the PIN or amount typed). */
  const worstWorld = (priceAvailable: boolean): Fake => (e) => {
    switch (e.type) {
      case 'loadQuote':
        return { type: 'loadQuote', quote: priceAvailable ? BIG_QUOTE : null };
      case 'loadWallet':
        return { type: 'loadWallet', wallet: { postedUg: BIG, pendingInUg: BIG, pendingOutUg: BIG, sellCentsPerGram: priceAvailable ? BIG_QUOTE.sellCentsPerGram : null } };
      case 'loadStatement':
        return { type: 'loadStatement', rows: bigRows };
      case 'verifyPin':
        return e.pin === GOOD_PIN ? { type: 'verifyPin', result: 'ok' } : e.pin === '5050' ? { type: 'verifyPin', result: 'locked', until: NOW } : { type: 'verifyPin', result: 'wrong_pin', attemptsLeft: e.pin === '4827' ? 1 : 2 };
      case 'placeBuyOrder':
        if (e.amountKes === 150_000) return { type: 'placeBuyOrder', result: 'daily_limit', limitKes: 250_000, remainingKes: 249_999 };
        if (e.amountKes === 10) return { type: 'placeBuyOrder', result: 'too_many_payments', retryMinutes: 60 };
        return { type: 'placeBuyOrder', result: e.amountKes === 11 ? 'payment_pending' : 'placed' };
      case 'placeSellOrder':
        if (e.pin === '5050') return { type: 'placeSellOrder', result: 'locked', until: NOW };
        if (e.pin === '4827') return { type: 'placeSellOrder', result: 'wrong_pin', attemptsLeft: 1 };
        if (e.pin === '6040') return { type: 'placeSellOrder', result: 'insufficient_gold', worthKes: 249_999 };
        if (e.pin === '6041') return { type: 'placeSellOrder', result: 'insufficient_gold', worthKes: 0 };
        if (e.pin === '6042') return { type: 'placeSellOrder', result: 'below_minimum' };
        if (e.pin === '6043') return { type: 'placeSellOrder', result: 'above_maximum' };
        if (e.pin === '6044') return { type: 'placeSellOrder', result: 'unavailable' };
        if (e.pin === '6045') return { type: 'placeSellOrder', result: 'daily_limit', limitKes: 250_000, remainingKes: 249_999 };
        return { type: 'placeSellOrder', result: 'placed' };
      default:
        return everydayWorld(e);
    }
  };
  const ALPHABET = ['0', '00', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'x', GOOD_PIN, '4827', '5050', '6040', '6041', '6042', '6043', '6044', '6045', '0123', '10', '11', '150000', '250000', '3971'];
  const bigCtx: MenuContext = { ...ctx, buyLimits: { minKes: 100_000, maxKes: 250_000 }, sellLimits: { minKes: 100_000, maxKes: 250_000 }, paybill: '1234567' };
  const relaxed: MenuContext = { ...ctx, buyLimits: { minKes: 10, maxKes: 250_000 }, sellLimits: { minKes: 10, maxKes: 250_000 }, paybill: '1234567' };

  test.each(LANGUAGES.map((l) => [l] as const))('walking every reachable screen in %s', (language) => {
    const seen = new Set<ScreenKey>();
    const visitedScreens = new Set<string>();
    let checked = 0;
    const scenarios: Array<{ c: MenuContext; priceAvailable: boolean; p: Profile; resumeAt?: Snapshot }> = [];
    for (const c of [relaxed, bigCtx]) {
      for (const priceAvailable of [true, false]) {
        for (const p of [profile(language, { offerLanguage: true }), profile(language, { hasPin: true }), profile(language, { hasPin: true, lockedUntil: NOW + 1_000 })]) {
          scenarios.push({ c, priceAvailable, p });
        }
      }
    }
    scenarios.push(
      { c: { ...relaxed, sellEnabled: false, paybill: null }, priceAvailable: true, p: profile(language, { hasPin: true }) },
      { c: relaxed, priceAvailable: true, p: profile(language, { hasPin: true }), resumeAt: { screen: 'mygold', history: ['home'] } },
      { c: relaxed, priceAvailable: true, p: profile(language, { hasPin: true, lockedUntil: NOW + 1_000 }), resumeAt: { screen: 'statement', history: ['home'] } },
      { c: bigCtx, priceAvailable: true, p: profile(language), resumeAt: { screen: 'buy.amount', history: ['home'], replay: '150000' } },
    );
    for (const { c, priceAvailable, p, resumeAt } of scenarios) {
      const world = worstWorld(priceAvailable);
      const start = settle(startMenu(screens, c, p, resumeAt), world, [], c);
      const queue: Array<{ result: ReturnType<typeof settle>; depth: number }> = [{ result: start, depth: 0 }];
      while (queue.length > 0) {
        const { result, depth } = queue.shift()!;
        const reply = formatReply(result.reply);
        checked += 1;
        if (reply.length > 160 || !GSM7.test(reply)) throw new Error(`not a valid screen (${reply.length} characters): ${JSON.stringify(reply)}`);
        visitedScreens.add(result.state.screen);
        if (result.reply.end || depth >= 6) continue;
        const key = keyOf(result.state, reply);
        if (seen.has(key)) continue;
        seen.add(key);
        for (const input of ALPHABET) queue.push({ result: settle(step(screens, result.state, input, c), world, [], c), depth: depth + 1 });
      }
    }
    // Every screen was reached.
    for (const id of Object.keys(screens)) expect(visitedScreens).toContain(id);
    expect(checked).toBeGreaterThan(1000);
  });
});

type ScreenKey = string;
function keyOf(state: MenuState, reply: string): ScreenKey {
  return JSON.stringify([state, reply]);
}

describe('the menu machine is pure', () => {
  test('the same state and input give the same result, and the state is not changed', () => {
    const state: MenuState = { screen: 'buy.amount', history: ['home'], data: {}, profile: profile('en') };
    const copy = structuredClone(state);
    expect(step(screens, state, '500', ctx)).toEqual(step(screens, state, '500', ctx));
    expect(state).toEqual(copy);
  });
});

describe('a quote locked on a confirm screen is good for quoteTtlMs, then quoted again', () => {
  const LATER_QUOTE = { buyCentsPerGram: 900_000, sellCentsPerGram: 873_000, asOf: '2026-11-26T08:31:00Z' };
  const later = (ms: number): MenuContext => ({ ...ctx, now: NOW + ms });
  /** Walks to the confirm screen at NOW, then types `input` `ms` later, with the feed at LATER_QUOTE by then. */
  function confirmAfter(kind: 'buy' | 'sell', ms: number) {
    const input = kind === 'buy' ? '1' : GOOD_PIN;
    const atConfirm = walk('en', [kind === 'buy' ? '1' : '2', '500'], WITH_PIN);
    const effects: Effect[] = [];
    const world: Fake = (e) => (e.type === 'loadQuote' ? { type: 'loadQuote', quote: LATER_QUOTE } : everydayWorld(e));
    const first = settle(step(screens, atConfirm.state, input, later(ms)), world, effects, later(ms));
    return { first, effects, again: () => settle(step(screens, first.state, input, later(ms)), world, effects, later(ms)) };
  }

  test.each(['buy', 'sell'] as const)('%s confirmed exactly at the limit: dealt at the quote shown', (kind) => {
    const { effects } = confirmAfter(kind, 60_000);
    expect(effects).toHaveLength(1);
    expect(effects[0]).toMatchObject({ type: kind === 'buy' ? 'placeBuyOrder' : 'placeSellOrder', priceCentsPerGram: kind === 'buy' ? 850_000 : 824_500, quotedAt: NOW });
  });

  test.each(['buy', 'sell'] as const)('%s confirmed after the limit: no order, the PIN not looked at, the confirm screen again at the new price; confirming that deals at it', (kind) => {
    const { first, effects, again } = confirmAfter(kind, 60_001);
    expect(effects).toEqual([{ type: 'loadQuote' }]);
    expect(first.state.screen).toBe(`${kind}.confirm`);
    const t = catalogFor('en');
    expect(formatReply(first.reply)).toBe(
      kind === 'buy' ? con(t.ussd.priceUpdated, t.ussd.buyConfirm('500', '0.0555', '9,000')) : con(t.ussd.priceUpdated, t.ussd.sellConfirm('500', '0.0572', '8,730')),
    );
    expect(formatReply(first.reply).length).toBeLessThanOrEqual(160);
    again();
    expect(effects[1]).toMatchObject({ type: kind === 'buy' ? 'placeBuyOrder' : 'placeSellOrder', priceCentsPerGram: kind === 'buy' ? 900_000 : 873_000, quotedAt: NOW + 60_001 });
  });
});
