import { randomUUID } from 'node:crypto';
import type { RunConfig } from '../../config';
import type { Db } from '../../db/knex';
import type { Outbox } from '../../infra/outbox';
import { holdForSale, transferIds } from '../../ledger/gold';
import { InsufficientFunds } from '../../ledger/ledger';
import { CENTS_PER_KES, microgramsForPayout } from '../../lib/units';
import { B2C_MAX_KES, B2C_MIN_KES } from '../../vendors/daraja-client';
import { checkDailyLimit } from '../../orders/daily-limits';
import { newPayoutId } from './payouts';
import { newReference } from '../buy/place-buy-order';
import type { OrderRequest } from '../../orders/orders';
import { Refusal, refusable } from '../../lib/refusal';

export type PlaceSellOrder = OrderRequest;

export type PlaceSellOrderResult =
  | { ok: true; orderId: string; reference: string; created: boolean }
  | { ok: false; reason: 'insufficient_gold' | 'below_minimum' | 'above_maximum' }
  /** `remainingKes`: what the customer may still sell today. */
  | { ok: false; reason: 'daily_limit'; remainingKes: number };

type SellRefusal = Extract<PlaceSellOrderResult, { ok: false }>;

/** Is selling switched on (B2C configured)? The menu should not offer a sale otherwise. */
export function sellAvailable(config: Pick<RunConfig, 'b2c'>): boolean {
  return config.b2c !== null;
}

/**
 * Records a sale in ONE transaction: the order, a pending customer -> pool transfer for the gold (the
 * ledger's CHECK refuses it if the customer does not have that much available), the payout and its
 * job. A refusal rolls everything back: nothing is written. No vendor is called here; the payout job
 * sends the B2C request. A repeated request (same sourceKey) finds the order it placed.
 */
export async function placeSellOrder(deps: { db: Db; outbox: Outbox; config: RunConfig }, input: PlaceSellOrder): Promise<PlaceSellOrderResult> {
  const { config } = deps;
  if (!sellAvailable(config)) throw new Error('placeSellOrder: selling is switched off (no B2C settings); check sellAvailable(config) first');
  if (!Number.isSafeInteger(input.amountKes)) throw new RangeError(`sell amount must be whole KES, got ${input.amountKes}`);
  if (input.amountKes < Math.max(config.sell.minKes, B2C_MIN_KES)) return { ok: false, reason: 'below_minimum' };
  if (input.amountKes > Math.min(config.sell.maxKes, B2C_MAX_KES)) return { ok: false, reason: 'above_maximum' };
  // The menu computed the grams from the quote; the server never pays for less gold than that quote needs.
  const needed = microgramsForPayout(input.amountKes * CENTS_PER_KES, input.priceCentsPerGram);
  if (!Number.isSafeInteger(input.gramsUg) || input.gramsUg < needed) {
    throw new RangeError(`sell of KES ${input.amountKes} at ${input.priceCentsPerGram} cents/g needs at least ${needed} ug, got ${input.gramsUg}`);
  }

  return refusable<PlaceSellOrderResult, SellRefusal>(async () => {
    const placed = await deps.outbox.transaction(async (trx) => {
      const limit = await checkDailyLimit(trx, 'sell', { ...input, amountCents: input.amountKes * CENTS_PER_KES }, config.sell.dailyLimitKes);
      if (!limit.ok) throw new Refusal<SellRefusal>({ ok: false, reason: 'daily_limit', remainingKes: limit.remainingKes });
      const repeat = await trx('orders').where({ source_key: input.sourceKey }).first('id', 'reference', 'kind');
      if (repeat) {
        if (repeat.kind !== 'sell') throw new Error(`source ${input.sourceKey} already placed a ${repeat.kind} order`);
        return { orderId: repeat.id as string, reference: repeat.reference as string, created: false };
      }

      // A customer without an account has no gold.
      const customerAccount = await trx('accounts').where({ customer_id: input.customerId }).first('id');
      if (!customerAccount) throw new Refusal<SellRefusal>({ ok: false, reason: 'insufficient_gold' });

      const orderId = randomUUID();
      const reference = newReference('SLD');
      await trx('orders').insert({
        id: orderId,
        reference,
        kind: 'sell',
        customer_id: input.customerId,
        msisdn: input.msisdn,
        amount_cents: input.amountKes * CENTS_PER_KES,
        price_cents_per_gram: input.priceCentsPerGram,
        grams_ug: input.gramsUg,
        status: 'reserved',
        source_key: input.sourceKey,
      });
      try {
        await holdForSale(trx, { id: transferIds.sale(orderId), customerId: input.customerId, customerAccountId: customerAccount.id, gramsUg: input.gramsUg, reference });
      } catch (err) {
        if (err instanceof InsufficientFunds) throw new Refusal<SellRefusal>({ ok: false, reason: 'insufficient_gold' });
        throw err;
      }
      const payoutId = newPayoutId();
      await trx('payouts').insert({ id: payoutId, order_id: orderId, msisdn: input.msisdn, amount_kes: input.amountKes });
      await deps.outbox.write(trx, 'payout', `payout-${payoutId}`, { payoutId });
      return { orderId, reference, created: true };
    });
    return { ok: true, orderId: placed.orderId, reference: placed.reference, created: placed.created };
  });
}
