import type { Config } from '../../config';
import type { Db } from '../../db/knex';
import type { Outbox } from '../../infra/outbox';
import type { Logger } from '../../lib/logger';
import { maskMsisdn, toMpesaMsisdn } from '../../lib/msisdn';
import { CENTS_PER_KES, formatGrams, formatKes, microgramsForCents } from '../../lib/units';
import { findOrCreateCustomer } from '../../orders/customers';
import type { PhoneLimits } from '../../orders/phone-limits';
import { placeLimitedBuy } from './place-limited-buy';
import type { Metrics } from '../../infra/metrics';

export interface ChannelBuyDeps {
  config: Config;
  db: Db;
  outbox: Outbox;
  log: Logger;
  limits: PhoneLimits;
  metrics?: Metrics;
  /** The service's price source (fixed or http): the same quote the USSD menu deals at. */
  prices: { quote(): Promise<{ buyCentsPerGram: number } | null> };
}

export interface ChannelBuyRequest {
  phoneNumber: string;
  amountKes: number;
  /** The caller's idempotency key, already namespaced by channel (`api:<key>`): the same key places one order. */
  sourceKey: string;
  channel: 'api' | 'test_stk';
  /** The smallest amount accepted; BUY_MIN_KES unless the channel allows less (a test push of KES 1). */
  minKes: number;
}

export type ChannelBuyResult =
  | { ok: true; created: boolean; order: PlacedOrder }
  | {
      ok: false;
      error: 'invalid_phone' | 'amount_out_of_range' | 'idempotency_key_reused' | 'payment_pending' | 'daily_limit' | 'too_many_payments' | 'price_unavailable';
      detail: string;
    };

export interface PlacedOrder {
  orderId: string;
  reference: string;
  status: string;
  phone: string;
  amountKes: number;
  grams: string;
  gramsUg: number;
  priceKesPerGram: string;
}

/**
 * A buy from another channel than USSD (an app's backend, an operator's test push): the very path of
 * the USSD confirm, with the same limits (pushes per phone per hour, one open payment per phone, the
 * daily limit) and the current price. Nothing here calls M-Pesa: the buy job does, from the outbox.
 */
export async function placeChannelBuy(deps: ChannelBuyDeps, req: ChannelBuyRequest): Promise<ChannelBuyResult> {
  const msisdn = toMpesaMsisdn(req.phoneNumber);
  if (!msisdn) return { ok: false, error: 'invalid_phone', detail: 'not a Kenyan M-Pesa number (2547XXXXXXXX or 2541XXXXXXXX)' };
  const { maxKes } = deps.config.buy;
  if (!Number.isSafeInteger(req.amountKes) || req.amountKes < req.minKes || req.amountKes > maxKes) {
    return { ok: false, error: 'amount_out_of_range', detail: `amountKes must be a whole number from ${req.minKes} to ${maxKes}` };
  }

  // A repeat of a request already recorded answers with its order, without taking a limit point.
  const existing = await deps.db('orders').where({ source_key: req.sourceKey }).first();
  if (existing) return repeatOf(existing, msisdn, req.amountKes);

  const priceCentsPerGram = (await deps.prices.quote())?.buyCentsPerGram ?? null;
  if (!priceCentsPerGram) return { ok: false, error: 'price_unavailable', detail: 'no current gold price to deal at; try again shortly' };
  const gramsUg = microgramsForCents(req.amountKes * CENTS_PER_KES, priceCentsPerGram);
  const customer = await findOrCreateCustomer(deps.db, msisdn);
  const placed = await placeLimitedBuy(deps, { customerId: customer.id, msisdn, amountKes: req.amountKes, priceCentsPerGram, gramsUg, sourceKey: req.sourceKey });
  if (!placed.ok) {
    switch (placed.reason) {
      case 'too_many_payments':
        return { ok: false, error: 'too_many_payments', detail: `too many payment prompts for this phone; retry in ${Math.ceil(placed.retryAfterMs / 1000)} s` };
      case 'payment_pending':
        return { ok: false, error: 'payment_pending', detail: 'this phone has a payment in progress; wait for it to finish' };
      case 'daily_limit':
        return { ok: false, error: 'daily_limit', detail: `over the daily limit; KES ${formatKes(placed.remainingKes * CENTS_PER_KES)} left today` };
    }
  }
  // Two requests with one key raced: the other one recorded the order.
  if (!placed.created) return repeatOf(await deps.db('orders').where({ id: placed.orderId }).first(), msisdn, req.amountKes);
  deps.metrics?.inc('orders_placed_total', { channel: req.channel });
  deps.log.info({ orderId: placed.orderId, phone: maskMsisdn(msisdn), amountKes: req.amountKes, channel: req.channel }, 'buy order placed');
  return {
    ok: true,
    created: true,
    order: view({ id: placed.orderId, reference: placed.reference, status: 'created', msisdn, amount_cents: req.amountKes * CENTS_PER_KES, grams_ug: gramsUg, price_cents_per_gram: priceCentsPerGram }),
  };
}

interface OrderRow {
  id: string;
  reference: string;
  status: string;
  msisdn: string;
  amount_cents: number;
  grams_ug: number;
  price_cents_per_gram: number;
}

/** The same key must mean the same request: a different phone or amount under it is refused. */
function repeatOf(order: OrderRow, msisdn: string, amountKes: number): ChannelBuyResult {
  if (order.msisdn !== msisdn || order.amount_cents !== amountKes * CENTS_PER_KES) {
    return { ok: false, error: 'idempotency_key_reused', detail: 'this Idempotency-Key was used for a different phone number or amount' };
  }
  return { ok: true, created: false, order: view(order) };
}

function view(o: OrderRow): PlacedOrder {
  return {
    orderId: o.id,
    reference: o.reference,
    status: o.status,
    phone: maskMsisdn(o.msisdn),
    amountKes: o.amount_cents / CENTS_PER_KES,
    grams: formatGrams(o.grams_ug),
    gramsUg: o.grams_ug,
    priceKesPerGram: formatKes(o.price_cents_per_gram),
  };
}
