import { type Language, catalogFor } from '../i18n';
import { eatTime } from '../lib/eat-time';
import { CENTS_PER_KES, formatKes } from '../lib/units';
import type { Gate, Outcome, ScreenId, Transition, View } from './machine';

/** What several screens share: the PIN gate, amount checks, the language switch, line joining. */

export const kes = (wholeKes: number) => formatKes(wholeKes * CENTS_PER_KES);
export const lines = (...parts: Array<string | false | null | undefined>) => parts.filter((p): p is string => typeof p === 'string').join('\n');

export function isLocked(v: View): boolean {
  return v.profile.lockedUntil !== null && v.profile.lockedUntil > v.now;
}

/** My gold, Statement, account changes and continuing behind them need the wallet PIN; the first time, the saver sets one. */
export function requirePin(v: View, gate: Gate): Transition {
  if (!v.profile.hasPin) return { to: 'pin.new', data: { gate } };
  if (isLocked(v)) return { reprompt: v.t.ussd.walletLocked(eatTime(v.profile.lockedUntil!)) };
  return { to: 'pin.enter', data: { gate } };
}

/** Where a correct PIN (or a first PIN just set) leads. */
export function afterPin(gate: Gate | undefined): Transition {
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
export function pinRefused(o: { result: 'wrong_pin'; attemptsLeft: number } | { result: 'locked'; until: number } | { result: 'no_pin' }, v: View, gate: Gate): Transition {
  switch (o.result) {
    case 'wrong_pin':
      return { reprompt: v.t.ussd.wrongPin(o.attemptsLeft) };
    case 'locked':
      return { end: v.t.ussd.walletLocked(eatTime(o.until)), profile: { lockedUntil: o.until } };
    case 'no_pin':
      return { to: 'pin.new', data: { gate }, profile: { hasPin: false } };
  }
}

export function languageChosen(language: Language): Transition {
  return { to: 'home', profile: { language, offerLanguage: false }, notice: catalogFor(language).ussd.languageSaved };
}

/** A whole-shilling amount within limits, or the reason it is not one. */
export function checkAmount(input: string, v: View, limits: { minKes: number; maxKes: number }): number | Transition {
  // Whole shillings only: M-Pesa takes no cents, and "1e5", "10.5" or "-5" are not amounts.
  if (!/^\d{1,9}$/.test(input)) return { reprompt: v.t.ussd.amountNotNumber };
  const amountKes = Number(input);
  if (amountKes < limits.minKes) return { reprompt: v.t.ussd.amountTooSmall(kes(limits.minKes)) };
  if (amountKes > limits.maxKes) return { reprompt: v.t.ussd.amountTooLarge(kes(limits.maxKes)) };
  return amountKes;
}

export function unexpected(screen: ScreenId, o: Outcome): never {
  throw new Error(`screen ${screen} got an unexpected ${o.type} outcome`);
}

/** Only 0 and 00 do anything here; the machine handles both. */
export const viewOnly = (v: View): Transition => ({ reprompt: v.t.ussd.invalidChoice });
