import { randomUUID } from 'node:crypto';
import type { Db } from '../../src/db/knex';
import { reserveFromPool, transferIds } from '../../src/ledger/gold';
import { microgramsForCents } from '../../src/lib/units';
import { stkCallbackBody } from './vendors';

const PRICE_CENTS_PER_GRAM = 850_000;

export interface PreparedOrder {
  id: string;
  reference: string;
  msisdn: string;
  customerId: number;
  checkoutRequestId: string;
  amountKes: number;
  gramsUg: number;
}

/**
 * Buys waiting for their STK result, written straight to the database as the buy job leaves them: order
 * `stk_sent`, its payment with a CheckoutRequestID (or none: `unknownCheckout`, a push whose answer we never got),
 * the reservation made through the ledger (pool -> customer, transferIds.buyReservation). Phones from `firstPhone`.
 */
export async function prepareAwaitingOrders(db: Db, n: number, opts: { tag: string; firstPhone: number; amountKes?: number; unknownCheckout?: (i: number) => boolean }): Promise<PreparedOrder[]> {
  const amountKes = opts.amountKes ?? 500;
  const gramsUg = microgramsForCents(amountKes * 100, PRICE_CENTS_PER_GRAM);
  const out: PreparedOrder[] = [];
  for (let i = 0; i < n; i++) {
    const msisdn = `2547${String(opts.firstPhone + i).padStart(8, '0')}`;
    const id = randomUUID();
    // The same tag and position give the same reference in any database (differential tests compare by it).
    const reference = `T${opts.tag}-${i}`.toUpperCase();
    const checkoutRequestId = `ws_CO_${opts.tag}_${i}`;
    const unknown = opts.unknownCheckout?.(i) ?? false;
    await db.transaction(async (trx) => {
      const [customer] = await trx('customers').insert({ msisdn }).onConflict('msisdn').merge().returning('id');
      await trx('orders').insert({ id, reference, kind: 'buy', customer_id: customer.id, msisdn, amount_cents: amountKes * 100, price_cents_per_gram: PRICE_CENTS_PER_GRAM, grams_ug: gramsUg, status: 'stk_sent', source_key: `test:${opts.tag}:${id}` });
      await reserveFromPool(trx, { id: transferIds.buyReservation(id), customerId: customer.id, gramsUg, reference });
      await trx('stk_payments').insert({
        order_id: id, msisdn, amount_kes: amountKes, push_attempts: 1,
        merchant_request_id: unknown ? null : `mr-${checkoutRequestId}`, checkout_request_id: unknown ? null : checkoutRequestId,
        push_outcome: unknown ? 'unknown' : 'accepted', push_started_at: trx.fn.now(), accepted_at: unknown ? null : trx.fn.now(),
      });
      out.push({ id, reference, msisdn, customerId: customer.id, checkoutRequestId, amountKes, gramsUg });
    });
  }
  return out;
}

/** The success callback Daraja sends for a prepared order (receipt `receipt`, amount and phone as asked unless overridden). */
export function paidBody(o: PreparedOrder, receipt: string, over: { amount?: number; phone?: string } = {}) {
  return stkCallbackBody({ checkoutRequestId: o.checkoutRequestId, resultCode: 0, amount: over.amount ?? o.amountKes, receipt, phone: Number(over.phone ?? o.msisdn) });
}
