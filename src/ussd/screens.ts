import { eatTime } from '../lib/eat-time';
import type { Screen, Screens } from './machine';
import { isLocked, languageChosen, lines, requirePin, unexpected } from './screen-rules';
import { buyAmount, buyConfirm, sellAmount, sellConfirm } from './trade-screens';
import { account, accountLanguage, myGold, pinEnter, pinNew, pinRepeat, prices, statement } from './wallet-screens';

/**
 * The screens, as data: what each shows, where each input leads, which effect it needs and where
 * each outcome of that effect leads. Every text comes from the saver's catalog.
 */

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
