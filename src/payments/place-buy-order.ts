import { randomBytes, randomUUID } from 'node:crypto';
import type { Db } from '../db/knex';
import type { Outbox } from '../jobs/outbox';
import { CENTS_PER_KES } from '../lib/units';

export interface PlaceBuyOrder {
  customerId: number;
  msisdn: string;
  amountKes: number;
  priceCentsPerGram: number;
  gramsUg: number;
  /** Where the request came from (e.g. `ussd:<sessionId>`): the same source places one order. */
  sourceKey: string;
}

/**
 * Records the order, its payment and its buy job in one transaction, then hands the job to the
 * queue. No vendor is called here: this runs inside the USSD request.
 */
export async function placeBuyOrder(deps: { db: Db; outbox: Outbox }, input: PlaceBuyOrder) {
  const { orderId, reference, outboxId, created } = await deps.db.transaction(async (trx) => {
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
      return { orderId: existing.id as string, reference: existing.reference as string, outboxId: null, created: false };
    }
    await trx('stk_payments').insert({ order_id: id, msisdn: input.msisdn, amount_kes: input.amountKes });
    const outboxId = await deps.outbox.write(trx, 'buy', `buy-${id}`, { orderId: id });
    return { orderId: id, reference: order.reference as string, outboxId, created: true };
  });
  if (outboxId !== null) await deps.outbox.relaySoon([outboxId]);
  return { orderId, reference, created };
}

/** 12 characters (Daraja's AccountReference limit), unambiguous letters and digits. */
function newReference(): string {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
  const bytes = randomBytes(9);
  let ref = 'GLD';
  for (const b of bytes) ref += alphabet[b % alphabet.length];
  return ref;
}
