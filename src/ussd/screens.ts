import type { Language } from '../i18n';
import { catalogFor } from '../i18n';
import { eatDateTime, eatDayMonth, eatTime } from '../lib/eat-time';
import { CENTS_PER_KES, centsForMicrograms, formatGrams, formatKes, microgramsForCents, microgramsForPayout } from '../lib/units';
import { isGuessablePin, PIN_PATTERN } from '../wallet/pin-rules';
import type { PriceQuote } from '../prices/price-quote';
import type { Deal, Gate, Outcome, Screen, ScreenId, Screens, Transition, View } from './machine';

/**
 * The screens, as data: what each shows, where each input leads, which effect it needs and where
 * each outcome of that effect leads. Every text comes from the saver's catalog.
 */

const kes = (wholeKes: number) => formatKes(wholeKes * CENTS_PER_KES);
const lines = (...parts: Array<string | false | null | undefined>) => parts.filter((p): p is string => typeof p === 'string').join('\n');

function isLocked(v: View): boolean {
  return v.profile.lockedUntil !== null && v.profile.lockedUntil > v.now;
}

/** My gold, Statement, account changes and continuing behind them need the wallet PIN; the first time, the saver sets one. */
function requirePin(v: View, gate: Gate): Transition {
  if (!v.profile.hasPin) return { to: 'pin.new', data: { gate } };
  if (isLocked(v)) return { reprompt: v.t.ussd.walletLocked(eatTime(v.profile.lockedUntil!)) };
  return { to: 'pin.enter', data: { gate } };
}

/** Where a correct PIN (or a first PIN just set) leads. */
function afterPin(gate: Gate | undefined): Transition {
  switch (gate) {
    case 'mygold':
      return { to: 'mygold' };
    case 'statement':
      return { to: 'statement' };
    case 'sell':
      return { to: 'sell.amount' };
    case 'account':
      return { to: 'account' };
    case 'changePin':
      return { to: 'pin.new', data: { gate: 'changePin' } };
    case 'language':
      return { to: 'account.language' };
    case 'resume':
      return { restore: true };
    default:
      return { to: 'home' };
  }
}

/** A PIN check that did not pass: the same for a PIN screen and for confirming a sale. */
function pinRefused(o: { result: 'wrong_pin'; attemptsLeft: number } | { result: 'locked'; until: number } | { result: 'no_pin' }, v: View, gate: Gate): Transition {
  switch (o.result) {
    case 'wrong_pin':
      return { reprompt: v.t.ussd.wrongPin(o.attemptsLeft) };
    case 'locked':
      return { end: v.t.ussd.walletLocked(eatTime(o.until)), profile: { lockedUntil: o.until } };
    case 'no_pin':
      return { to: 'pin.new', data: { gate }, profile: { hasPin: false } };
  }
}

function languageChosen(language: Language): Transition {
  return { to: 'home', profile: { language, offerLanguage: false }, notice: catalogFor(language).ussd.languageSaved };
}

/** A whole-shilling amount within limits, or the reason it is not one. */
function checkAmount(input: string, v: View, limits: { minKes: number; maxKes: number }): number | Transition {
  // Whole shillings only: M-Pesa takes no cents, and "1e5", "10.5" or "-5" are not amounts.
  if (!/^\d{1,9}$/.test(input)) return { reprompt: v.t.ussd.amountNotNumber };
  const amountKes = Number(input);
  if (amountKes < limits.minKes) return { reprompt: v.t.ussd.amountTooSmall(kes(limits.minKes)) };
  if (amountKes > limits.maxKes) return { reprompt: v.t.ussd.amountTooLarge(kes(limits.maxKes)) };
  return amountKes;
}

function unexpected(screen: ScreenId, o: Outcome): never {
  throw new Error(`screen ${screen} got an unexpected ${o.type} outcome`);
}

/** Only 0 and 00 do anything here; the machine handles both. */
const viewOnly = (v: View): Transition => ({ reprompt: v.t.ussd.invalidChoice });

const home: Screen = {
  render: (v, _data, room) => {
    const menu = lines(v.t.ussd.homeMenu, v.profile.offerLanguage && v.t.ussd.offerLanguage, v.resumeTo !== null && v.t.ussd.offerResume);
    // Under a reason line, the title gives way first, then the offers (they come back on the next screen).
    for (const candidate of [lines(v.t.ussd.homeTitle, menu), menu]) if (candidate.length <= room) return candidate;
    return v.t.ussd.homeMenu;
  },
  handle: (input, v) => {
    switch (input) {
      case '1':
        return { to: 'buy.amount' };
      case '2':
        if (!v.sellEnabled) return { end: v.t.ussd.sellUnavailable };
        if (!v.profile.hasPin) return { to: 'pin.new', data: { gate: 'sell' } };
        // The PIN confirms the sale itself; a locked wallet is told at once.
        return isLocked(v) ? { reprompt: v.t.ussd.walletLocked(eatTime(v.profile.lockedUntil!)) } : { to: 'sell.amount' };
      case '3':
        return requirePin(v, 'mygold');
      case '4':
        return requirePin(v, 'statement');
      case '5':
        return { to: 'prices' };
      case '6':
        return { to: 'account' };
      case '7':
        if (v.profile.offerLanguage) return { run: { type: 'setLanguage', language: v.profile.language === 'sw' ? 'en' : 'sw' } };
        break;
      case '8':
        if (v.resumeTo !== null) return screens[v.resumeTo].behindPin && v.profile.hasPin ? requirePin(v, 'resume') : { restore: true };
        break;
    }
    return { reprompt: v.t.ussd.invalidChoice };
  },
  resume: (o) => (o.type === 'setLanguage' ? languageChosen(o.language) : unexpected('home', o)),
};

const buyAmount: Screen = {
  // With Pay by Paybill on, the screen also tells savers they can pay from the M-Pesa menu (the menu
  // test walks it with the longest shortcode and limits under every reason line: it fits 160).
  render: (v) =>
    v.paybill
      ? v.t.ussd.buyAmountPaybill(kes(v.buyLimits.minKes), kes(v.buyLimits.maxKes), v.paybill)
      : v.t.ussd.buyAmount(kes(v.buyLimits.minKes), kes(v.buyLimits.maxKes)),
  handle: (input, v) => {
    const amount = checkAmount(input, v, v.buyLimits);
    return typeof amount === 'number' ? { run: { type: 'loadQuote' }, data: { amountKes: amount } } : amount;
  },
  resume: (o, v, data) => {
    if (o.type !== 'loadQuote') return unexpected('buy.amount', o);
    if (!o.quote) return { to: 'home', notice: v.t.ussd.priceUnavailable };
    const buy = buyDeal(data.amountKes!, o.quote, v);
    if (buy.gramsUg === 0) return { reprompt: v.t.ussd.amountTooSmall(kes(v.buyLimits.minKes)) };
    // The quote shown is the quote charged: it is locked into the session here.
    return { to: 'buy.confirm', data: { buy } };
  },
};

function buyDeal(amountKes: number, quote: PriceQuote, v: View): Deal {
  return { amountKes, priceCentsPerGram: quote.buyCentsPerGram, gramsUg: microgramsForCents(amountKes * CENTS_PER_KES, quote.buyCentsPerGram), quotedAt: v.now };
}

function sellDeal(amountKes: number, quote: PriceQuote, v: View): Deal {
  // Rounded up: the pool never pays for gold it did not get.
  return { amountKes, priceCentsPerGram: quote.sellCentsPerGram, gramsUg: microgramsForPayout(amountKes * CENTS_PER_KES, quote.sellCentsPerGram), quotedAt: v.now };
}

/**
 * A locked quote is good for QUOTE_TTL_SECONDS. Confirmed later (a saver who waited while the price
 * moved), it is never dealt at: the confirm screen is shown again with a fresh quote.
 */
function quoteExpired(deal: Deal, v: View): boolean {
  return !(typeof deal.quotedAt === 'number' && v.now - deal.quotedAt <= v.quoteTtlMs);
}

/** The fresh quote for a confirm screen whose quote ran out: the same screen again, with the new price. */
function requoted(o: Outcome, v: View, kind: 'buy' | 'sell', amountKes: number): Transition {
  if (o.type !== 'loadQuote') return unexpected(`${kind}.confirm`, o);
  if (!o.quote) return { to: 'home', notice: v.t.ussd.priceUnavailable };
  const deal = kind === 'buy' ? buyDeal(amountKes, o.quote, v) : sellDeal(amountKes, o.quote, v);
  if (deal.gramsUg === 0) return { to: `${kind}.amount`, notice: v.t.ussd.amountTooSmall(kes((kind === 'buy' ? v.buyLimits : v.sellLimits).minKes)) };
  return { show: { [kind]: deal }, notice: v.t.ussd.priceUpdated };
}

const buyConfirm: Screen = {
  render: (v, data) => {
    const buy = data.buy!;
    return v.t.ussd.buyConfirm(kes(buy.amountKes), formatGrams(buy.gramsUg), formatKes(buy.priceCentsPerGram));
  },
  handle: (input, v, data) => {
    if (input === '1') return quoteExpired(data.buy!, v) ? { run: { type: 'loadQuote' } } : { run: { type: 'placeBuyOrder', ...data.buy! } };
    if (input === '2') return { end: v.t.ussd.buyCancelled };
    return { reprompt: v.t.ussd.invalidChoice };
  },
  resume: (o, v, data) => {
    if (o.type === 'loadQuote') return requoted(o, v, 'buy', data.buy!.amountKes);
    if (o.type !== 'placeBuyOrder') return unexpected('buy.confirm', o);
    switch (o.result) {
      case 'placed':
        return { end: v.t.ussd.buySubmitted(kes(data.buy!.amountKes)) };
      case 'payment_pending':
        return { end: v.t.ussd.paymentPending };
      case 'too_many_payments':
        return { end: v.t.ussd.tooManyPayments(String(o.retryMinutes)) };
      case 'daily_limit':
        return { end: v.t.ussd.buyDailyLimit(kes(o.limitKes), kes(o.remainingKes)) };
    }
  },
  // A dropped confirm continues by re-entering its amount: a fresh quote, never a stale one.
  resumeAs: (data) => ({ screen: 'buy.amount', replay: String(data.buy!.amountKes) }),
};

const sellAmount: Screen = {
  render: (v) => v.t.ussd.sellAmount(kes(v.sellLimits.minKes), kes(v.sellLimits.maxKes)),
  handle: (input, v) => {
    const amount = checkAmount(input, v, v.sellLimits);
    return typeof amount === 'number' ? { run: { type: 'loadQuote' }, data: { amountKes: amount } } : amount;
  },
  resume: (o, v, data) => {
    if (o.type !== 'loadQuote') return unexpected('sell.amount', o);
    if (!o.quote) return { to: 'home', notice: v.t.ussd.priceUnavailable };
    return { to: 'sell.confirm', data: { sell: sellDeal(data.amountKes!, o.quote, v) } };
  },
};

const sellConfirm: Screen = {
  secret: true,
  render: (v, data) => {
    const sell = data.sell!;
    return v.t.ussd.sellConfirm(kes(sell.amountKes), formatGrams(sell.gramsUg), formatKes(sell.priceCentsPerGram));
  },
  handle: (input, v, data) => {
    if (!PIN_PATTERN.test(input)) return { reprompt: v.t.ussd.pinFormat };
    // An expired quote is re-quoted before the PIN is even looked at: the PIN confirms the new price.
    return quoteExpired(data.sell!, v) ? { run: { type: 'loadQuote' } } : { run: { type: 'placeSellOrder', pin: input, ...data.sell! } };
  },
  resume: (o, v, data) => {
    if (o.type === 'loadQuote') return requoted(o, v, 'sell', data.sell!.amountKes);
    if (o.type !== 'placeSellOrder') return unexpected('sell.confirm', o);
    switch (o.result) {
      case 'placed':
        return { end: v.t.ussd.sellSubmitted(kes(data.sell!.amountKes)) };
      case 'insufficient_gold':
        return o.worthKes > 0 ? { to: 'sell.amount', notice: v.t.ussd.sellWorthOnly(kes(o.worthKes)) } : { to: 'home', notice: v.t.ussd.sellNoGold };
      case 'daily_limit':
        return { end: v.t.ussd.sellDailyLimit(kes(o.limitKes), kes(o.remainingKes)) };
      case 'below_minimum':
        return { to: 'sell.amount', notice: v.t.ussd.amountTooSmall(kes(v.sellLimits.minKes)) };
      case 'above_maximum':
        return { to: 'sell.amount', notice: v.t.ussd.amountTooLarge(kes(v.sellLimits.maxKes)) };
      case 'unavailable':
        return { end: v.t.ussd.sellUnavailable };
      default:
        return pinRefused(o, v, 'sell');
    }
  },
  resumeAs: (data) => ({ screen: 'sell.amount', replay: String(data.sell!.amountKes) }),
};

const pinEnter: Screen = {
  transient: true,
  secret: true,
  render: (v) => v.t.ussd.enterPin,
  handle: (input, v) => (PIN_PATTERN.test(input) ? { run: { type: 'verifyPin', pin: input } } : { reprompt: v.t.ussd.pinFormat }),
  resume: (o, v, data) => {
    if (o.type !== 'verifyPin') return unexpected('pin.enter', o);
    if (o.result === 'ok') return { ...afterPin(data.gate), profile: { lockedUntil: null } };
    return pinRefused(o, v, data.gate ?? 'account');
  },
};

const pinNew: Screen = {
  transient: true,
  secret: true,
  render: (v, data) => (data.gate === 'changePin' ? v.t.ussd.newPinChange : v.t.ussd.newPin),
  handle: (input, v) => {
    if (!PIN_PATTERN.test(input)) return { reprompt: v.t.ussd.pinFormat };
    if (isGuessablePin(input, v.msisdn)) return { reprompt: v.t.ussd.pinGuessable };
    return { run: { type: 'stagePin', pin: input } };
  },
  resume: (o) => (o.type === 'stagePin' ? { to: 'pin.repeat' } : unexpected('pin.new', o)),
};

const pinRepeat: Screen = {
  transient: true,
  secret: true,
  render: (v) => v.t.ussd.repeatPin,
  handle: (input, v, data) =>
    PIN_PATTERN.test(input) ? { run: { type: 'savePin', pin: input, firstPin: data.gate !== 'changePin' } } : { reprompt: v.t.ussd.pinFormat },
  resume: (o, v, data) => {
    if (o.type !== 'savePin') return unexpected('pin.repeat', o);
    if (o.result !== 'saved') return { to: 'pin.new', notice: v.t.ussd.pinMismatch };
    if (data.gate === 'changePin') return { end: v.t.ussd.pinChanged, profile: { hasPin: true, lockedUntil: null } };
    return { ...afterPin(data.gate), notice: v.t.ussd.pinSaved, profile: { hasPin: true, lockedUntil: null } };
  },
};

const myGold: Screen = {
  behindPin: true,
  load: { type: 'loadWallet' },
  render: (v, data, room) => {
    const w = data.wallet!;
    const value =
      w.sellCentsPerGram === null
        ? v.t.ussd.myGoldNoValue
        : v.t.ussd.myGoldValue(formatKes(centsForMicrograms(w.postedUg, w.sellCentsPerGram)), formatKes(w.sellCentsPerGram));
    const facts = lines(
      v.t.ussd.myGold(formatGrams(w.postedUg)),
      value,
      w.pendingInUg > 0 && v.t.ussd.pendingBuy(formatGrams(w.pendingInUg)),
      w.pendingOutUg > 0 && v.t.ussd.pendingSell(formatGrams(w.pendingOutUg)),
    );
    // With every line at its longest, the facts win over the reminder of 0/00 (which still work).
    const full = lines(facts, v.t.ussd.backHome);
    return full.length <= room ? full : facts;
  },
  handle: (_input, v) => viewOnly(v),
  resume: (o) => (o.type === 'loadWallet' ? { show: { wallet: o.wallet } } : unexpected('mygold', o)),
};

const statement: Screen = {
  behindPin: true,
  load: { type: 'loadStatement' },
  render: (v, data, room) => {
    const rows = data.statement ?? [];
    const footer = lines(rows.length > 0 && v.t.ussd.statementSmsOption, v.t.ussd.back);
    if (rows.length === 0) return lines(v.t.ussd.statementEmpty, footer);
    // As many of the newest rows as fit (all 5 at everyday amounts).
    const shown: string[] = [];
    for (const r of rows) {
      const row = v.t.ussd.statementRow(eatDayMonth(r.at), r.kind, formatGrams(r.gramsUg), r.kesCents === null ? '-' : formatKes(r.kesCents));
      if (lines(v.t.ussd.statementTitle, ...shown, row, footer).length > room) break;
      shown.push(row);
    }
    return lines(v.t.ussd.statementTitle, ...shown, footer);
  },
  handle: (input, v, data) => (input === '1' && (data.statement ?? []).length > 0 ? { run: { type: 'sendStatement' } } : { reprompt: v.t.ussd.invalidChoice }),
  resume: (o, v) => {
    if (o.type === 'loadStatement') return { show: { statement: o.rows } };
    if (o.type === 'sendStatement') return { end: v.t.ussd.statementSent };
    return unexpected('statement', o);
  },
};

const prices: Screen = {
  load: { type: 'loadQuote' },
  render: (v, data) => {
    const q = data.quote!;
    return lines(v.t.ussd.prices(formatKes(q.buyCentsPerGram), formatKes(q.sellCentsPerGram), eatDateTime(q.asOf)), v.t.ussd.backHome);
  },
  handle: (_input, v) => viewOnly(v),
  resume: (o, v) => {
    if (o.type !== 'loadQuote') return unexpected('prices', o);
    return o.quote ? { show: { quote: o.quote } } : { to: 'home', notice: v.t.ussd.priceUnavailable };
  },
};

const account: Screen = {
  render: (v) => v.t.ussd.account(v.profile.hasPin),
  handle: (input, v) => {
    // Changing the PIN asks for the old one first; setting a first PIN needs nothing.
    if (input === '1') return requirePin(v, v.profile.hasPin ? 'changePin' : 'account');
    // A language is a change to the account: behind the PIN once there is one.
    if (input === '2') return v.profile.hasPin ? requirePin(v, 'language') : { to: 'account.language' };
    return { reprompt: v.t.ussd.invalidChoice };
  },
};

const accountLanguage: Screen = {
  behindPin: true,
  render: (v) => v.t.ussd.chooseLanguage,
  handle: (input, v) => {
    if (input === '1') return { run: { type: 'setLanguage', language: 'en' } };
    if (input === '2') return { run: { type: 'setLanguage', language: 'sw' } };
    return { reprompt: v.t.ussd.invalidChoice };
  },
  resume: (o) => (o.type === 'setLanguage' ? languageChosen(o.language) : unexpected('account.language', o)),
};

export const screens: Screens = {
  home,
  'buy.amount': buyAmount,
  'buy.confirm': buyConfirm,
  'sell.amount': sellAmount,
  'sell.confirm': sellConfirm,
  'pin.enter': pinEnter,
  'pin.new': pinNew,
  'pin.repeat': pinRepeat,
  mygold: myGold,
  statement,
  prices,
  account,
  'account.language': accountLanguage,
};
