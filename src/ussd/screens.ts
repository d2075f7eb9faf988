import { formatGrams, formatKes, microgramsForCents, CENTS_PER_KES } from '../lib/units';
import type { Screen, ScreenId } from './machine';

/** The screens, as data: what each shows and where each input leads. Texts come from the catalog. */
export const screens: Record<ScreenId, Screen> = {
  home: {
    render: (ctx) => ctx.t.ussd.home,
    handle: (input, ctx) => (input === '1' ? { to: 'buy.amount' } : { reprompt: ctx.t.ussd.invalidChoice }),
  },

  'buy.amount': {
    render: (ctx) => ctx.t.ussd.buyAmount(formatKes(ctx.buyLimits.minKes * CENTS_PER_KES), formatKes(ctx.buyLimits.maxKes * CENTS_PER_KES)),
    handle: (input, ctx) => {
      const { minKes, maxKes } = ctx.buyLimits;
      // Whole shillings only: M-Pesa takes no cents, and "1e5", "10.5" or "-5" are not amounts.
      if (!/^\d{1,9}$/.test(input)) return { reprompt: ctx.t.ussd.amountNotNumber };
      const amountKes = Number(input);
      if (amountKes < minKes) return { reprompt: ctx.t.ussd.amountTooSmall(formatKes(minKes * CENTS_PER_KES)) };
      if (amountKes > maxKes) return { reprompt: ctx.t.ussd.amountTooLarge(formatKes(maxKes * CENTS_PER_KES)) };
      const gramsUg = microgramsForCents(amountKes * CENTS_PER_KES, ctx.priceCentsPerGram);
      if (gramsUg === 0) return { reprompt: ctx.t.ussd.amountTooSmall(formatKes(minKes * CENTS_PER_KES)) };
      // The quote shown is the quote charged: it is locked into the session here.
      return { to: 'buy.confirm', data: { buy: { amountKes, priceCentsPerGram: ctx.priceCentsPerGram, gramsUg } } };
    },
  },

  'buy.confirm': {
    render: (ctx, data) => {
      const buy = data.buy!;
      return ctx.t.ussd.buyConfirm(formatKes(buy.amountKes * CENTS_PER_KES), formatGrams(buy.gramsUg), formatKes(buy.priceCentsPerGram));
    },
    handle: (input, ctx, data) => {
      const buy = data.buy!;
      if (input === '1') {
        return { end: ctx.t.ussd.buySubmitted(formatKes(buy.amountKes * CENTS_PER_KES)), effect: { type: 'placeBuyOrder', ...buy } };
      }
      if (input === '2') return { end: ctx.t.ussd.buyCancelled };
      return { reprompt: ctx.t.ussd.invalidChoice };
    },
  },
};
