import type { RunConfig } from '../config';
import type { Db } from '../db/knex';
import type { Outbox } from '../infra/outbox';
import type { Logger } from '../lib/logger';
import { maskMsisdn } from '../lib/msisdn';
import type { Metrics } from '../infra/metrics';
import { CENTS_PER_KES, centsForMicrograms } from '../lib/units';
import type { OrderRequest } from '../orders/orders';
import type { PhoneLimits } from '../orders/phone-limits';
import { placeLimitedBuy } from '../payments/buy/place-limited-buy';
import { placeSellOrder, sellAvailable } from '../payments/sell/place-sell-order';
import type { PriceSource } from '../prices/price-quote';
import { walletBalance } from '../wallet/balance';
import { recentMovements, sendStatementSms } from '../wallet/statement';
import { confirmNewPin, stageNewPin, verifyWalletPin, type PinCheck } from '../wallet/wallet-pin';
import type { Effect, MenuContext, Outcome, PinRefusal } from './machine';
import { ussdSourceKey } from './session-store';

export interface EffectDeps {
  config: RunConfig;
  db: Db;
  outbox: Outbox;
  log: Logger;
  limits: PhoneLimits;
  prices: PriceSource;
  metrics?: Metrics;
}

export interface EffectSession {
  customerId: number;
  msisdn: string;
  sessionId: string;
}

/** Rows on the statement screen; the SMS carries 10. */
const STATEMENT_SCREEN_ROWS = 5;

/** Carries out what the menu asked for and reports the outcome in the menu's terms. Never logs a PIN. */
export async function performEffect(deps: EffectDeps, s: EffectSession, effect: Effect, ctx: MenuContext): Promise<Outcome> {
  const now = new Date(ctx.now);
  switch (effect.type) {
    case 'loadQuote':
      return { type: 'loadQuote', quote: await deps.prices.quote(now) };
    case 'loadWallet': {
      const [balance, quote] = await Promise.all([walletBalance(deps.db, s.customerId), deps.prices.quote(now)]);
      return {
        type: 'loadWallet',
        wallet: { postedUg: balance.postedUg, pendingInUg: balance.pendingInUg, pendingOutUg: balance.pendingOutUg, sellCentsPerGram: quote?.sellCentsPerGram ?? null },
      };
    }
    case 'loadStatement':
      return { type: 'loadStatement', rows: await recentMovements(deps.db, s.customerId, STATEMENT_SCREEN_ROWS) };
    case 'sendStatement':
      await sendStatementSms(deps, s.customerId, `statement-${ussdSourceKey(s.msisdn, s.sessionId)}`);
      return { type: 'sendStatement' };
    case 'verifyPin': {
      const check = await verifyWalletPin(deps, s.customerId, effect.pin, deps.config.wallet.pinLockSeconds, now);
      logPinCheck(deps, s, check);
      return check.result === 'ok' ? { type: 'verifyPin', result: 'ok' } : { type: 'verifyPin', ...pinRefusal(check) };
    }
    case 'stagePin':
      await stageNewPin(deps.db, s.customerId, effect.pin, now);
      return { type: 'stagePin' };
    case 'savePin': {
      const result = await confirmNewPin(deps.db, s.customerId, effect.pin, { firstPin: effect.firstPin }, now);
      deps.log.info({ customerId: s.customerId, result, firstPin: effect.firstPin }, 'wallet pin set');
      return { type: 'savePin', result };
    }
    case 'setLanguage':
      await deps.db('customers').where({ id: s.customerId }).update({ language: effect.language, language_chosen_at: now });
      return { type: 'setLanguage', language: effect.language };
    case 'placeBuyOrder':
      return placeBuy(deps, s, effect);
    case 'placeSellOrder':
      return placeSell(deps, s, effect, now);
  }
}

function pinRefusal(check: Exclude<PinCheck, { result: 'ok' }>): PinRefusal {
  switch (check.result) {
    case 'wrong':
      return { result: 'wrong_pin', attemptsLeft: check.attemptsLeft };
    case 'locked':
      return { result: 'locked', until: check.until.getTime() };
    case 'no_pin':
      return { result: 'no_pin' };
  }
}

function logPinCheck(deps: EffectDeps, s: EffectSession, check: PinCheck) {
  if (check.result === 'ok') return;
  deps.log.info({ customerId: s.customerId, phone: maskMsisdn(s.msisdn), result: check.result }, 'wallet pin refused');
}

/** The order a confirm screen asks for: this session's customer at the quote it showed, once per session. */
function orderRequest(s: EffectSession, effect: { amountKes: number; priceCentsPerGram: number; gramsUg: number }): OrderRequest {
  return { customerId: s.customerId, msisdn: s.msisdn, amountKes: effect.amountKes, priceCentsPerGram: effect.priceCentsPerGram, gramsUg: effect.gramsUg, sourceKey: ussdSourceKey(s.msisdn, s.sessionId) };
}

async function placeBuy(deps: EffectDeps, s: EffectSession, effect: Extract<Effect, { type: 'placeBuyOrder' }>): Promise<Outcome> {
  const order = await placeLimitedBuy(deps, orderRequest(s, effect));
  if (!order.ok) {
    deps.log.info({ phone: maskMsisdn(s.msisdn), reason: order.reason }, 'buy refused');
    switch (order.reason) {
      case 'too_many_payments':
        return { type: 'placeBuyOrder', result: 'too_many_payments', retryMinutes: Math.max(1, Math.ceil(order.retryAfterMs / 60_000)) };
      case 'payment_pending':
        return { type: 'placeBuyOrder', result: 'payment_pending' };
      case 'daily_limit':
        return { type: 'placeBuyOrder', result: 'daily_limit', limitKes: deps.config.buy.dailyLimitKes, remainingKes: order.remainingKes };
    }
  }
  if (order.created) deps.metrics?.inc('orders_placed_total', { channel: 'ussd' });
  deps.log.info({ orderId: order.orderId, phone: maskMsisdn(s.msisdn), amountKes: effect.amountKes }, 'buy order placed');
  return { type: 'placeBuyOrder', result: 'placed' };
}

/** The wallet PIN confirms the sale: checked (and counted) first, then the order is placed at the quoted price. */
async function placeSell(deps: EffectDeps, s: EffectSession, effect: Extract<Effect, { type: 'placeSellOrder' }>, now: Date): Promise<Outcome> {
  if (!sellAvailable(deps.config)) return { type: 'placeSellOrder', result: 'unavailable' };
  const check = await verifyWalletPin(deps, s.customerId, effect.pin, deps.config.wallet.pinLockSeconds, now);
  logPinCheck(deps, s, check);
  if (check.result !== 'ok') return { type: 'placeSellOrder', ...pinRefusal(check) };
  const placed = await placeSellOrder(deps, orderRequest(s, effect));
  if (placed.ok) {
    deps.log.info({ orderId: placed.orderId, phone: maskMsisdn(s.msisdn), amountKes: effect.amountKes }, 'sell order placed');
    return { type: 'placeSellOrder', result: 'placed' };
  }
  deps.log.info({ phone: maskMsisdn(s.msisdn), reason: placed.reason }, 'sell refused');
  switch (placed.reason) {
    case 'insufficient_gold': {
      // Told only now, after the PIN: what the gold is worth is the saver's business alone.
      const balance = await walletBalance(deps.db, s.customerId);
      const worthKes = Math.floor(centsForMicrograms(balance.availableUg, effect.priceCentsPerGram) / CENTS_PER_KES);
      return { type: 'placeSellOrder', result: 'insufficient_gold', worthKes };
    }
    case 'daily_limit':
      return { type: 'placeSellOrder', result: 'daily_limit', limitKes: deps.config.sell.dailyLimitKes, remainingKes: placed.remainingKes };
    case 'below_minimum':
    case 'above_maximum':
      return { type: 'placeSellOrder', result: placed.reason };
  }
}
