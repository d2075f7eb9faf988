import type { Catalog, Language } from '../i18n';
import type { PriceQuote } from '../prices/price-quote';
import type { StatementRow } from '../wallet/statement';

/** The menu machine's vocabulary: screens, sessions, effects and outcomes, transitions (machine.ts runs them). */

export type ScreenId =
  | 'home'
  | 'buy.amount'
  | 'buy.confirm'
  | 'sell.amount'
  | 'sell.confirm'
  | 'pin.enter'
  | 'pin.new'
  | 'pin.repeat'
  | 'mygold'
  | 'statement'
  | 'prices'
  | 'account'
  | 'account.language';

/** Where a PIN entry (or setting a first PIN) leads once it succeeds. */
export type Gate = 'mygold' | 'statement' | 'sell' | 'account' | 'changePin' | 'language' | 'resume';

/** What the menu knows of the saver; loaded with the session, updated by outcomes. */
export interface Profile {
  language: Language;
  /** The very first dial: the other language is offered on the main menu. */
  offerLanguage: boolean;
  hasPin: boolean;
  /** ms since the epoch, while the wallet is locked after wrong PINs. */
  lockedUntil: number | null;
}

export interface Deal {
  amountKes: number;
  priceCentsPerGram: number;
  gramsUg: number;
  /** ms since the epoch: when this quote was locked on the confirm screen (it is good for quoteTtlMs). */
  quotedAt: number;
}

export interface WalletView {
  postedUg: number;
  pendingInUg: number;
  pendingOutUg: number;
  /** The current sell price, or null when no fresh price is available. */
  sellCentsPerGram: number | null;
}

export type { StatementRow };

/** Per-flow data: cleared on the way home. Never a PIN. */
export interface SessionData {
  gate?: Gate;
  /** An amount typed, waiting for its price quote. */
  amountKes?: number;
  /** The quote locked when the confirm screen was shown: what is charged or paid. */
  buy?: Deal;
  sell?: Deal;
  quote?: PriceQuote;
  wallet?: WalletView;
  statement?: StatementRow[];
}

/** Where a dropped session can be continued: a screen, how it was reached, and an input to replay. */
export interface Snapshot {
  screen: ScreenId;
  history: ScreenId[];
  replay?: string;
}

export interface MenuState {
  screen: ScreenId;
  history: ScreenId[];
  data: SessionData;
  profile: Profile;
  /** A dropped session's place, offered on the main menu until used. */
  resume?: Snapshot;
  /** A line to show above the next screen (set while an effect runs). */
  notice?: string;
}

/** Per request, from the configuration and the clock. */
export interface MenuContext {
  now: number;
  msisdn: string;
  buyLimits: { minKes: number; maxKes: number };
  sellLimits: { minKes: number; maxKes: number };
  sellEnabled: boolean;
  /** A quote locked on a confirm screen longer ago than this is quoted again before it is used. */
  quoteTtlMs: number;
  /** Pay by Paybill (C2B) is on: the buy screen names this Paybill number. Unset or null: off. */
  paybill?: string | null;
}

/** What a screen sees: the context, the saver's catalog and profile. */
export interface View extends MenuContext {
  t: Catalog;
  profile: Profile;
  /** The screen a dropped session can be continued on, if any. */
  resumeTo: ScreenId | null;
}

export type Effect =
  | { type: 'loadQuote' }
  | { type: 'loadWallet' }
  | { type: 'loadStatement' }
  | { type: 'sendStatement' }
  | { type: 'verifyPin'; pin: string }
  | { type: 'stagePin'; pin: string }
  | { type: 'savePin'; pin: string; firstPin: boolean }
  | { type: 'setLanguage'; language: Language }
  | ({ type: 'placeBuyOrder' } & Deal)
  | ({ type: 'placeSellOrder'; pin: string } & Deal);

export type PinRefusal = { result: 'wrong_pin'; attemptsLeft: number } | { result: 'locked'; until: number } | { result: 'no_pin' };

export type Outcome =
  | { type: 'loadQuote'; quote: PriceQuote | null }
  | { type: 'loadWallet'; wallet: WalletView }
  | { type: 'loadStatement'; rows: StatementRow[] }
  | { type: 'sendStatement' }
  | ({ type: 'verifyPin' } & ({ result: 'ok' } | PinRefusal))
  | { type: 'stagePin' }
  | { type: 'savePin'; result: 'saved' | 'mismatch' | 'expired' }
  | { type: 'setLanguage'; language: Language }
  | ({ type: 'placeBuyOrder' } & (
      | { result: 'placed' }
      | { result: 'payment_pending' }
      | { result: 'too_many_payments'; retryMinutes: number }
      | { result: 'daily_limit'; limitKes: number; remainingKes: number }
    ))
  | ({ type: 'placeSellOrder' } & (
      | { result: 'placed' }
      | PinRefusal
      | { result: 'insufficient_gold'; worthKes: number }
      | { result: 'daily_limit'; limitKes: number; remainingKes: number }
      | { result: 'below_minimum' }
      | { result: 'above_maximum' }
      | { result: 'unavailable' }
    ));

/** Every transition may also change the profile and put a one-line notice above the next screen. */
export type Transition = (
  | { to: ScreenId; data?: Partial<SessionData> }
  | { reprompt: string }
  | { show: Partial<SessionData> }
  | { run: Effect; data?: Partial<SessionData> }
  | { end: string }
  /** Continue the dropped session offered on the main menu (the screens decide whether the PIN comes first). */
  | { restore: true }
) & { notice?: string; profile?: Partial<Profile> };

export interface Screen {
  /** `room`: the characters left for this screen's text (after CON and any notice line). */
  render(v: View, data: SessionData, room: number): string;
  handle(input: string, v: View, data: SessionData): Transition;
  /** Loaded each time the screen is entered, before it renders (its outcome goes to `resume`). */
  load?: Effect;
  /** Maps the outcome of this screen's effect (its `load`, or a `run` from `handle`) to a transition. */
  resume?(outcome: Outcome, v: View, data: SessionData): Transition;
  /** Not kept in the back history (PIN entries): back from the next screen skips it. */
  transient?: true;
  /** What is typed here is a PIN: never stored, and scrubbed from anything that records `text`. */
  secret?: true;
  /** Continuing a dropped session on this screen asks for the PIN again. */
  behindPin?: true;
  /** Continuing a dropped session here restarts from another screen, replaying an input. */
  resumeAs?(data: SessionData): { screen: ScreenId; replay?: string };
}

export type Screens = Record<ScreenId, Screen>;

export interface Reply {
  end: boolean;
  text: string;
}

/** Either an answer, or an effect to perform before there can be one. */
export type StepResult = { state: MenuState; reply: Reply; effect?: undefined } | { state: MenuState; effect: Effect; reply?: undefined };
