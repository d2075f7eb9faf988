import { CENTS_PER_KES, formatGrams, formatKes, microgramsForCents, microgramsForPayout } from '../lib/units';
import type { PriceQuote } from '../prices/price-quote';
import { PIN_PATTERN } from '../wallet/pin-rules';
import type { Deal, Outcome, Screen, Transition, View } from './machine';
import { checkAmount, kes, pinRefused, unexpected } from './screen-rules';

/** Buying and selling: the amount screens and the confirm screens, with the quote they lock and its lifetime. */

export const buyAmount: Screen = {
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

export function buyDeal(amountKes: number, quote: PriceQuote, v: View): Deal {
  return { amountKes, priceCentsPerGram: quote.buyCentsPerGram, gramsUg: microgramsForCents(amountKes * CENTS_PER_KES, quote.buyCentsPerGram), quotedAt: v.now };
}

export function sellDeal(amountKes: number, quote: PriceQuote, v: View): Deal {
  // Rounded up: the pool never pays for gold it did not get.
  return { amountKes, priceCentsPerGram: quote.sellCentsPerGram, gramsUg: microgramsForPayout(amountKes * CENTS_PER_KES, quote.sellCentsPerGram), quotedAt: v.now };
}

/**
 * A locked quote is good for QUOTE_TTL_SECONDS. Confirmed later (a saver who waited while the price
 * moved), it is never dealt at: the confirm screen is shown again with a fresh quote.
 */
export function quoteExpired(deal: Deal, v: View): boolean {
  return !(typeof deal.quotedAt === 'number' && v.now - deal.quotedAt <= v.quoteTtlMs);
}

/** The fresh quote for a confirm screen whose quote ran out: the same screen again, with the new price. */
export function requoted(o: Outcome, v: View, kind: 'buy' | 'sell', amountKes: number): Transition {
  if (o.type !== 'loadQuote') return unexpected(`${kind}.confirm`, o);
  if (!o.quote) return { to: 'home', notice: v.t.ussd.priceUnavailable };
  const deal = kind === 'buy' ? buyDeal(amountKes, o.quote, v) : sellDeal(amountKes, o.quote, v);
  if (deal.gramsUg === 0) return { to: `${kind}.amount`, notice: v.t.ussd.amountTooSmall(kes((kind === 'buy' ? v.buyLimits : v.sellLimits).minKes)) };
  return { show: { [kind]: deal }, notice: v.t.ussd.priceUpdated };
}

export const buyConfirm: Screen = {
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

export const sellAmount: Screen = {
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

export const sellConfirm: Screen = {
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
