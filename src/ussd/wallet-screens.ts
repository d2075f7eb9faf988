import { eatDateTime, eatDayMonth } from '../lib/eat-time';
import { centsForMicrograms, formatGrams, formatKes } from '../lib/units';
import { PIN_PATTERN, isGuessablePin } from '../wallet/pin-rules';
import type { Screen } from './machine';
import { afterPin, languageChosen, lines, pinRefused, requirePin, unexpected, viewOnly } from './screen-rules';

/** The wallet: PIN entry and setting, my gold, the statement, prices and the account menu. */

export const pinEnter: Screen = {
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

export const pinNew: Screen = {
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

export const pinRepeat: Screen = {
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

export const myGold: Screen = {
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

export const statement: Screen = {
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

export const prices: Screen = {
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

export const account: Screen = {
  render: (v) => v.t.ussd.account(v.profile.hasPin),
  handle: (input, v) => {
    // Changing the PIN asks for the old one first; setting a first PIN needs nothing.
    if (input === '1') return requirePin(v, v.profile.hasPin ? 'changePin' : 'account');
    // A language is a change to the account: behind the PIN once there is one.
    if (input === '2') return v.profile.hasPin ? requirePin(v, 'language') : { to: 'account.language' };
    return { reprompt: v.t.ussd.invalidChoice };
  },
};

export const accountLanguage: Screen = {
  behindPin: true,
  render: (v) => v.t.ussd.chooseLanguage,
  handle: (input, v) => {
    if (input === '1') return { run: { type: 'setLanguage', language: 'en' } };
    if (input === '2') return { run: { type: 'setLanguage', language: 'sw' } };
    return { reprompt: v.t.ussd.invalidChoice };
  },
  resume: (o) => (o.type === 'setLanguage' ? languageChosen(o.language) : unexpected('account.language', o)),
};
