import type { Catalog } from '../i18n';

/**
 * The USSD menu as a pure state machine: (state, input, context) -> (reply, next state, effect).
 * No I/O here; the caller loads the session, runs this, performs the effect and answers.
 * Navigation that every screen shares (0 back, 00 home, re-prompt with a reason) lives here once.
 */

export type ScreenId = 'home' | 'buy.amount' | 'buy.confirm';

export interface SessionData {
  buy?: { amountKes: number; priceCentsPerGram: number; gramsUg: number };
}

export interface MenuState {
  screen: ScreenId;
  history: ScreenId[];
  data: SessionData;
}

export interface MenuContext {
  t: Catalog;
  buyLimits: { minKes: number; maxKes: number };
  priceCentsPerGram: number;
}

export type Effect = { type: 'placeBuyOrder'; amountKes: number; priceCentsPerGram: number; gramsUg: number };

export type Transition =
  | { to: ScreenId; data?: SessionData }
  | { reprompt: string }
  | { end: string; effect?: Effect };

export interface Screen {
  render(ctx: MenuContext, data: SessionData): string;
  handle(input: string, ctx: MenuContext, data: SessionData): Transition;
}

export interface Reply {
  end: boolean;
  text: string;
}

export interface StepResult {
  state: MenuState;
  reply: Reply;
  effect?: Effect;
}

export const BACK = '0';
export const HOME = '00';

export function startMenu(screens: Record<ScreenId, Screen>, ctx: MenuContext): StepResult {
  const state: MenuState = { screen: 'home', history: [], data: {} };
  return { state, reply: { end: false, text: screens.home.render(ctx, state.data) } };
}

export function step(screens: Record<ScreenId, Screen>, state: MenuState, input: string, ctx: MenuContext): StepResult {
  const show = (next: MenuState, prefix?: string): StepResult => {
    const body = screens[next.screen].render(ctx, next.data);
    return { state: next, reply: { end: false, text: prefix ? `${prefix}\n${body}` : body } };
  };

  if (input === HOME) return show({ screen: 'home', history: [], data: {} });
  if (input === BACK) {
    const history = state.history.slice(0, -1);
    return show({ screen: state.history[state.history.length - 1] ?? 'home', history, data: state.data });
  }

  const t = screens[state.screen].handle(input.trim(), ctx, state.data);
  if ('reprompt' in t) return show(state, t.reprompt);
  if ('to' in t) {
    return show({ screen: t.to, history: [...state.history, state.screen], data: { ...state.data, ...t.data } });
  }
  return { state, reply: { end: true, text: t.end }, ...(t.effect ? { effect: t.effect } : {}) };
}

/** What Africa's Talking expects: `CON ` to continue, `END ` to close. */
export function formatReply(reply: Reply): string {
  return `${reply.end ? 'END' : 'CON'} ${reply.text}`;
}
