import { catalogFor } from '../i18n';
import { merged } from '../lib/merged';
import type { MenuContext, MenuState, Outcome, Profile, Reply, Screens, SessionData, Snapshot, StepResult, ScreenId, Transition, View } from './menu-types';

export type * from './menu-types';

/**
 * The USSD menu as a pure state machine. No I/O here: what needs the database or the price feed is
 * an EFFECT the machine asks for; the caller (handle-ussd.ts) performs it and feeds the OUTCOME back
 * with `resume`, and the screen that asked maps it to the next transition. Navigation that every
 * screen shares (0 back, 00 home, a one-line reason above a re-shown screen, the 160-character
 * budget) lives here once.
 */

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
  return merged(at, { history: at.screen === state.screen || i < 0 ? state.history : state.history.slice(0, i) });
}

/** What Africa's Talking expects: `CON ` to continue, `END ` to close. */
export function formatReply(reply: Reply): string {
  return `${reply.end ? 'END' : 'CON'} ${reply.text}`;
}

function view(state: MenuState, ctx: MenuContext): View {
  return merged(ctx, { t: catalogFor(state.profile.language), profile: state.profile, resumeTo: state.resume?.screen ?? null });
}

function apply(screens: Screens, state: MenuState, t: Transition, ctx: MenuContext): StepResult {
  const s: MenuState = t.profile ? { ...state, profile: { ...state.profile, ...t.profile } } : state;
  const notice = t.notice ?? s.notice;
  if ('reprompt' in t) return show(screens, s, ctx, t.reprompt);
  if ('show' in t) return show(screens, { ...s, data: merged(s.data, t.show) }, ctx, notice);
  if ('end' in t) return { state: withoutNotice(s), reply: { end: true, text: t.end } };
  if ('run' in t) {
    const data = merged(s.data, t.data ?? {});
    return { state: notice ? merged(s, { data, notice }) : { ...s, data }, effect: t.run };
  }
  if ('restore' in t) return restore(screens, s, ctx);
  return enter(screens, moveTo(screens, s, t.to, t.data ?? {}), ctx, notice);
}

/** Going home forgets the flow; going to a screen already in the history unwinds back to it. */
function moveTo(screens: Screens, s: MenuState, to: ScreenId, data: Partial<SessionData>): MenuState {
  if (to === 'home') return { ...s, screen: 'home', history: [], data: { ...data } };
  const i = s.history.indexOf(to);
  const history = i >= 0 ? s.history.slice(0, i) : screens[s.screen].transient || s.screen === to ? s.history : [...s.history, s.screen];
  return { ...s, screen: to, history, data: merged(s.data, data) };
}

function enter(screens: Screens, s: MenuState, ctx: MenuContext, notice?: string): StepResult {
  const load = screens[s.screen].load;
  if (load) return { state: notice ? merged(s, { notice }) : s, effect: load };
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
