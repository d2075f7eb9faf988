import { catalogFor, type Catalog, type Language } from '../i18n';
import type { PriceQuote } from '../prices/price-quote';
import type { StatementRow } from '../wallet/statement';

/**
 * The USSD menu as a pure state machine. No I/O here: what needs the database or the price feed is
 * an EFFECT the machine asks for; the caller (handle-ussd.ts) performs it and feeds the OUTCOME back
 * with `resume`, and the screen that asked maps it to the next transition. Navigation that every
 * screen shares (0 back, 00 home, a one-line reason above a re-shown screen, the 160-character
 * budget) lives here once.
 */

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

export const BACK = '0';
export const HOME = '00';
/** Safaricom's limit for a USSD screen, `CON `/`END ` included. */
export const SCREEN_LIMIT = 160;
const PREFIX_LENGTH = 4;

export function startMenu(screens: Screens, ctx: MenuContext, profile: Profile, resume?: Snapshot): StepResult {
  return show(screens, { screen: 'home', history: [], data: {}, profile, ...(resume ? { resume } : {}) }, ctx);
}

/** One input typed by the saver. */
export function step(screens: Screens, state: MenuState, input: string, ctx: MenuContext): StepResult {
  if (input === HOME) return apply(screens, state, { to: 'home' }, ctx);
  if (input === BACK) {
    const previous = state.history[state.history.length - 1] ?? 'home';
    return enter(screens, { ...state, screen: previous, history: state.history.slice(0, -1) }, ctx);
  }
  return apply(screens, state, screens[state.screen].handle(input.trim(), view(state, ctx), state.data), ctx);
}

/** The outcome of the effect the last result asked for. */
export function resume(screens: Screens, state: MenuState, outcome: Outcome, ctx: MenuContext): StepResult {
  const screen = screens[state.screen];
  if (!screen.resume) throw new Error(`screen ${state.screen} cannot take the outcome of ${outcome.type}`);
  return apply(screens, state, screen.resume(outcome, view(state, ctx), state.data), ctx);
}

/**
 * Where this session could be continued if it dropped now: null when there is nothing to continue
 * (home, or the session ended), undefined to keep whatever was recorded before (a PIN entry).
 */
export function snapshotOf(screens: Screens, state: MenuState, reply: Reply): Snapshot | null | undefined {
  if (reply.end || state.screen === 'home') return null;
  const screen = screens[state.screen];
  if (screen.transient) return undefined;
  const at = screen.resumeAs ? screen.resumeAs(state.data) : { screen: state.screen };
  const i = state.history.indexOf(at.screen);
  return { ...at, history: at.screen === state.screen || i < 0 ? state.history : state.history.slice(0, i) };
}

/** What Africa's Talking expects: `CON ` to continue, `END ` to close. */
export function formatReply(reply: Reply): string {
  return `${reply.end ? 'END' : 'CON'} ${reply.text}`;
}

function view(state: MenuState, ctx: MenuContext): View {
  return { ...ctx, t: catalogFor(state.profile.language), profile: state.profile, resumeTo: state.resume?.screen ?? null };
}

function apply(screens: Screens, state: MenuState, t: Transition, ctx: MenuContext): StepResult {
  const s: MenuState = t.profile ? { ...state, profile: { ...state.profile, ...t.profile } } : state;
  const notice = t.notice ?? s.notice;
  if ('reprompt' in t) return show(screens, s, ctx, t.reprompt);
  if ('show' in t) return show(screens, { ...s, data: { ...s.data, ...t.show } }, ctx, notice);
  if ('end' in t) return { state: withoutNotice(s), reply: { end: true, text: t.end } };
  if ('run' in t) return { state: { ...s, data: { ...s.data, ...t.data }, ...(notice ? { notice } : {}) }, effect: t.run };
  if ('restore' in t) return restore(screens, s, ctx);
  return enter(screens, moveTo(screens, s, t.to, t.data ?? {}), ctx, notice);
}

/** Going home forgets the flow; going to a screen already in the history unwinds back to it. */
function moveTo(screens: Screens, s: MenuState, to: ScreenId, data: Partial<SessionData>): MenuState {
  if (to === 'home') return { ...s, screen: 'home', history: [], data: { ...data } };
  const i = s.history.indexOf(to);
  const history = i >= 0 ? s.history.slice(0, i) : screens[s.screen].transient || s.screen === to ? s.history : [...s.history, s.screen];
  return { ...s, screen: to, history, data: { ...s.data, ...data } };
}

function enter(screens: Screens, s: MenuState, ctx: MenuContext, notice?: string): StepResult {
  const load = screens[s.screen].load;
  if (load) return { state: { ...s, ...(notice ? { notice } : {}) }, effect: load };
  return show(screens, s, ctx, notice);
}

function show(screens: Screens, s: MenuState, ctx: MenuContext, notice?: string): StepResult {
  const state = withoutNotice(s);
  const line = notice ?? s.notice;
  const room = SCREEN_LIMIT - PREFIX_LENGTH - (line ? line.length + 1 : 0);
  const body = screens[state.screen].render(view(state, ctx), state.data, room);
  return { state, reply: { end: false, text: line ? `${line}\n${body}` : body } };
}

function withoutNotice(s: MenuState): MenuState {
  if (s.notice === undefined) return s;
  const { notice: _notice, ...rest } = s;
  return rest;
}

/** Continue a dropped session where it was: replaying the input that led to a confirm screen, so its quote is fresh. */
function restore(screens: Screens, s: MenuState, ctx: MenuContext): StepResult {
  const snap = s.resume;
  if (!snap) return show(screens, s, ctx, catalogFor(s.profile.language).ussd.invalidChoice);
  const { resume: _used, ...rest } = s;
  const restored: MenuState = { ...rest, screen: snap.screen, history: snap.history, data: {} };
  return snap.replay !== undefined ? step(screens, restored, snap.replay, ctx) : enter(screens, restored, ctx);
}
