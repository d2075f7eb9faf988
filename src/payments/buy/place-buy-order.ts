import { randomBytes, randomUUID } from 'node:crypto';
import type { Db } from '../../db/knex';
import type { Outbox } from '../../infra/outbox';
import { CENTS_PER_KES } from '../../lib/units';
import { checkDailyLimit } from '../../orders/daily-limits';
import { OPEN_BUY_STATUSES } from '../../orders/order-states';
import type { OrderRequest } from '../../orders/orders';
import { Refusal, refusable } from '../../lib/refusal';

/** The partial unique index that allows one open buy per phone (migration 20261126_008_security). */
const ONE_OPEN_BUY_INDEX = 'orders_one_open_buy_per_msisdn';

export type PlaceBuyOrder = OrderRequest;

export type PlaceBuyOrderResult =
  | { ok: true; orderId: string; reference: string; created: boolean }
  /** Over BUY_DAILY_LIMIT_KES: nothing was recorded. `remainingKes`: what the customer may still buy today. */
  | { ok: false; reason: 'daily_limit'; remainingKes: number }
  /** Another buy of this phone may still be charged (M-Pesa prompts one payment at a time): nothing recorded. */
  | { ok: false; reason: 'payment_pending' };

const PAYMENT_PENDING = { ok: false, reason: 'payment_pending' } as const;

/**
 * Records the order, its payment and its buy job in one transaction, then hands the job to the
 * queue. No vendor is called here: this runs inside the USSD request.
 * Refused (`payment_pending`) while another buy of this phone may still be charged.
 */
export async function placeBuyOrder(
  deps: { db: Db; outbox: Outbox; config: { buy: { dailyLimitKes: number } } },
  input: PlaceBuyOrder,
): Promise<PlaceBuyOrderResult> {
  return refusable<PlaceBuyOrderResult, typeof PAYMENT_PENDING>(() =>
    deps.outbox.transaction(async (trx): Promise<PlaceBuyOrderResult> => {
    const limit = await checkDailyLimit(trx, 'buy', input, deps.config.buy.dailyLimitKes);
    if (!limit.ok) return { ok: false as const, reason: 'daily_limit' as const, remainingKes: limit.remainingKes };
    // M-Pesa prompts one payment per phone at a time. This check gives the clear answer; the unique
    // index decides when two sessions race (caught below).
    const open = await trx('orders')
      .where({ msisdn: input.msisdn, kind: 'buy' })
      .whereIn('status', OPEN_BUY_STATUSES)
      .whereNot({ source_key: input.sourceKey })
      .first('id');
    if (open) throw new Refusal(PAYMENT_PENDING);
    const id = randomUUID();
    const [order] = await trx('orders')
      .insert({
        id,
        reference: newReference(),
        kind: 'buy',
        customer_id: input.customerId,
        msisdn: input.msisdn,
        amount_cents: input.amountKes * CENTS_PER_KES,
        price_cents_per_gram: input.priceCentsPerGram,
        grams_ug: input.gramsUg,
        status: 'created',
        source_key: input.sourceKey,
      })
      .onConflict('source_key')
      .ignore()
      .returning(['id', 'reference']);
    if (!order) {
      const existing = await trx('orders').where({ source_key: input.sourceKey }).first('id', 'reference');
      return { ok: true as const, orderId: existing.id as string, reference: existing.reference as string, created: false };
    }
    await trx('stk_payments').insert({ order_id: id, msisdn: input.msisdn, amount_kes: input.amountKes });
    await deps.outbox.write(trx, 'buy', `buy-${id}`, { orderId: id });
    return { ok: true as const, orderId: id, reference: order.reference as string, created: true };
  }).catch((err: unknown) => {
    const e = err as { code?: string; constraint?: string };
    if (e?.code === '23505' && e.constraint === ONE_OPEN_BUY_INDEX) throw new Refusal(PAYMENT_PENDING);
    throw err;
  }));
}

/** 12 characters (Daraja's AccountReference limit), unambiguous letters and digits; `SLD…` for a sale. */
export function newReference(prefix: 'GLD' | 'SLD' = 'GLD'): string {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
  const bytes = randomBytes(9);
  let ref: string = prefix;
  for (const b of bytes) ref += alphabet[b % alphabet.length];
  return ref;
}
