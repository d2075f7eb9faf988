'use strict';
/**
 * Prepared buy orders for the callback benchmark: customers, their ledger accounts, orders in `stk_sent` with a
 * known CheckoutRequestID, and the reservation made exactly as the buy job makes it (createPendingTransfer,
 * pool -> customer, id transferIds.buyReservation(order)). Bulk SQL for the plain rows, the ledger API for the gold.
 */
const { randomUUID } = require('node:crypto');
const { dist, phone } = require('./env');

const AMOUNT_KES = 500;
const PRICE_CENTS_PER_GRAM = 850_000;

async function prepareStkSentOrders(db, { count, tag, firstPhone }) {
  const ledger = dist('src/ledger/ledger');
  const { fundPool } = dist('src/ledger/fund-pool');
  const { transferIds } = dist('src/ledger/gold');
  const { microgramsForCents } = dist('src/lib/units');
  const gramsUg = microgramsForCents(AMOUNT_KES * 100, PRICE_CENTS_PER_GRAM);
  await fundPool(db, gramsUg * count + 1_000_000, `bench ${tag}`);
  const pool = await ledger.accountIdByCode(db, ledger.SYSTEM_ACCOUNTS.pool);

  const orders = [];
  for (let i = 0; i < count; i++) {
    orders.push({
      id: randomUUID(),
      reference: `B${tag}${String(i).padStart(7, '0')}`.slice(0, 12),
      msisdn: phone(firstPhone + i),
      checkoutRequestId: `ws_CO_BENCH_${tag}_${i}`,
      receipt: `R${tag.toUpperCase()}${i.toString(36).toUpperCase().padStart(6, '0')}`,
      amountKes: AMOUNT_KES,
      gramsUg,
    });
  }
  const BATCH = 500;
  for (let b = 0; b < orders.length; b += BATCH) {
    const slice = orders.slice(b, b + BATCH);
    await db.transaction(async (trx) => {
      const customers = await trx('customers')
        .insert(slice.map((o) => ({ msisdn: o.msisdn })))
        .onConflict('msisdn')
        .merge()
        .returning(['id', 'msisdn']);
      const customerId = new Map(customers.map((c) => [c.msisdn, c.id]));
      await trx('accounts')
        .insert(customers.map((c) => ({ code: `customer:${c.id}`, kind: 'customer', customer_id: c.id, must_not_overdraft: true })))
        .onConflict('code')
        .ignore();
      const accounts = await trx('accounts').whereIn('customer_id', customers.map((c) => c.id)).select('id', 'customer_id');
      const accountOf = new Map(accounts.map((a) => [a.customer_id, a.id]));
      await trx('orders').insert(
        slice.map((o) => ({
          id: o.id,
          reference: o.reference,
          kind: 'buy',
          customer_id: customerId.get(o.msisdn),
          msisdn: o.msisdn,
          amount_cents: o.amountKes * 100,
          price_cents_per_gram: PRICE_CENTS_PER_GRAM,
          grams_ug: o.gramsUg,
          status: 'created',
          source_key: `bench:${tag}:${o.id}`,
        })),
      );
      for (const o of slice) {
        await ledger.createPendingTransfer(trx, {
          id: transferIds.buyReservation(o.id),
          debitAccountId: pool,
          creditAccountId: accountOf.get(customerId.get(o.msisdn)),
          amount: o.gramsUg,
          reference: o.reference,
        });
      }
      await trx('stk_payments').insert(
        slice.map((o) => ({
          order_id: o.id,
          msisdn: o.msisdn,
          amount_kes: o.amountKes,
          push_attempts: 1,
          merchant_request_id: `mr-${o.checkoutRequestId}`,
          checkout_request_id: o.checkoutRequestId,
          accepted_at: trx.fn.now(),
        })),
      );
      await trx('orders').whereIn('id', slice.map((o) => o.id)).update({ status: 'stk_sent', updated_at: trx.fn.now() });
    });
  }
  return orders;
}

/** Daraja's success callback for a prepared order (the shape test/support/vendors.ts uses). */
function paidCallback(o) {
  return {
    Body: {
      stkCallback: {
        MerchantRequestID: `mr-${o.checkoutRequestId}`,
        CheckoutRequestID: o.checkoutRequestId,
        ResultCode: 0,
        ResultDesc: 'The service request is processed successfully.',
        CallbackMetadata: {
          Item: [
            { Name: 'Amount', Value: o.amountKes },
            { Name: 'MpesaReceiptNumber', Value: o.receipt },
            { Name: 'Balance' },
            { Name: 'TransactionDate', Value: 20261126102115 },
            { Name: 'PhoneNumber', Value: Number(o.msisdn) },
          ],
        },
      },
    },
  };
}

module.exports = { prepareStkSentOrders, paidCallback, AMOUNT_KES };
