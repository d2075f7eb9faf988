import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import type { Config } from '../../config';
import type { Db } from '../../db/knex';
import { catalogFor } from '../../i18n';
import type { Outbox } from '../../infra/outbox';
import type { Logger } from '../../lib/logger';
import { maskMsisdn, type Msisdn } from '../../lib/msisdn';
import { formatGrams, formatKes, microgramsForCents } from '../../lib/units';
import { logOpsAlerts, raiseOpsAlert, type OpsAlert } from '../../notifications/ops-alerts';
import { queueSms } from '../../notifications/queue-sms';
import type { PriceSource } from '../../prices/price-quote';
import { HttpPriceFeed } from '../../prices/price-source';
import { findOrCreateCustomer, type Customer } from '../../orders/customers';
import { checkDailyLimit } from '../../orders/daily-limits';
import { newReference } from '../buy/place-buy-order';
import { amountCents, amountProblem, walletMsisdn, type C2bPayload } from './c2b-payload';
import { creditFromPool, transferIds } from '../../ledger/gold';

export interface C2bDeps {
  db: Db;
  outbox: Outbox;
  log: Logger;
  prices: PriceSource;
  config: Pick<Config, 'buy' | 'c2b'>;
}

/** Why a Paybill payment could not be turned into gold at once: it waits in review for an operator. */
export type C2bReviewReason =
  | 'shortcode_not_ours'
  | 'account_not_a_phone'
  | 'amount_not_whole'
  | 'amount_below_minimum'
  | 'amount_above_maximum'
  | 'daily_limit'
  | 'price_unavailable'
  | 'pool_insufficient';

export type C2bOutcome = { outcome: 'credited'; orderId: string } | { outcome: 'review'; orderId: string | null; reason: C2bReviewReason } | { outcome: 'duplicate' };

const REVIEW_MESSAGES: Record<C2bReviewReason, string> = {
  shortcode_not_ours: 'the payment names a BusinessShortCode other than MPESA_C2B_SHORTCODE: check it against the M-Pesa statement of that shortcode before anything else (a forged confirmation looks like this)',
  account_not_a_phone: 'the account number is not a Kenyan mobile number, so it names no wallet: find the payer in the M-Pesa statement and refund',
  amount_not_whole: 'the amount is not whole shillings: credit (gold at the recorded price) or refund',
  amount_below_minimum: 'the amount is below BUY_MIN_KES: credit (gold at the recorded price) or refund',
  amount_above_maximum: 'the amount is above BUY_MAX_KES: credit (gold at the recorded price) or refund',
  daily_limit: 'the payment takes the saver past BUY_DAILY_LIMIT_KES for today: credit (gold at the recorded price) or refund',
  price_unavailable: 'no fresh gold price (feed stale or trading paused): the order holds the highest last known price; credit if it is right, else refund',
  pool_insufficient: 'the pool cannot cover the gold: fund the pool and credit, or refund',
};

/**
 * A Paybill payment's confirmation, applied exactly once per M-Pesa TransID. The money has ALREADY
 * been taken from the payer, so every confirmation ends up either as gold or in review, never lost:
 *  - the account number (not the masked MSISDN) names the wallet; a new number gets one, as on a first dial;
 *  - gold at the current buy quote, rounded down in the house's favour, reserved from the pool and
 *    posted through the ledger, with the receipt SMS carrying the TransID;
 *  - anything that stops that (another BusinessShortCode, not a phone, amount outside the buy limits
 *    or not whole, past the saver's daily buy limit, no fresh price, pool empty) puts the payment in `review` with an ops alert and, when there is a phone,
 *    an SMS saying a person will sort it out. With a wallet and a price, the review is an order an
 *    operator resolves with POST /ops/orders/:id/resolve.
 * Everything (payment row, order, ledger moves, SMS outbox row, alert) commits in ONE transaction.
 * The unique TransID makes a duplicate, also a concurrent one, insert nothing and change nothing.
 */
export async function confirmC2b(deps: C2bDeps, payload: C2bPayload, raw: unknown): Promise<C2bOutcome> {
  const transId = payload.TransID;
  // A repeat is answered without touching anything (the unique insert below still decides races).
  if (await deps.db('c2b_payments').where({ trans_id: transId }).first('id')) return { outcome: 'duplicate' };

  const msisdn = walletMsisdn(payload.BillRefNumber);
  const cents = amountCents(payload);
  // Money paid to another shortcode is not ours to turn into gold (and is what a forgery would look like).
  const ours = deps.config.c2b !== null && payload.BusinessShortCode === deps.config.c2b.shortcode;
  // Outside the transaction, like a first dial: a wallet is harmless even if the rest must be retried.
  const customer = msisdn && ours ? await findOrCreateCustomer(deps.db, msisdn) : null;
  // The shared store the quote lives in may be down while Postgres is up: then there is no price, and
  // the payment goes to review (price_unavailable) instead of going unrecorded.
  const quote = await deps.prices.quote().catch(() => null);
  const price = quote?.buyCentsPerGram ?? (await highestKnownBuyPrice(deps.prices).catch(() => null));
  const gramsUg = price ? microgramsForCents(cents, price) : 0;

  const result = await deps.outbox.transaction(async (trx) => {
    const [claimed] = await trx('c2b_payments')
      .insert({
        trans_id: transId,
        bill_ref_number: payload.BillRefNumber.slice(0, 100),
        msisdn,
        amount_cents: cents,
        business_shortcode: payload.BusinessShortCode,
        trans_time: payload.TransTime ?? null,
        status: 'review',
        payload: JSON.stringify(raw),
      })
      .onConflict('trans_id')
      .ignore()
      .returning('id');
    if (!claimed) return { outcome: { outcome: 'duplicate' } as C2bOutcome, alerts: [] as OpsAlert[] };

    let reason = ours ? reviewReason(customer, cents, deps.config.buy, quote !== null) : 'shortcode_not_ours';
    // No wallet, or no price ever known: no order can hold it; the payment row and the alert do.
    if (!customer || !price || gramsUg === 0) return reviewWithoutOrder(trx, deps.outbox, { transId, customer, cents, reason: reason ?? 'price_unavailable' });

    const orderId = randomUUID();
    const reference = newReference();
    let balanceUg = 0;
    // The same daily limit as a USSD buy (it takes the customer's lock, so concurrent payments add up).
    if (!reason) {
      const limit = await checkDailyLimit(trx, 'buy', { customerId: customer.id, sourceKey: `c2b:${transId}`, amountCents: cents }, deps.config.buy.dailyLimitKes);
      if (!limit.ok) reason = 'daily_limit';
    }
    if (!reason) {
      const credited = await creditFromPool(trx, { id: transferIds.buyReservation(orderId), customerId: customer.id, gramsUg, reference });
      if (credited.ok) balanceUg = credited.balanceUg;
      else reason = 'pool_insufficient';
    }
    await trx('orders').insert({
      id: orderId,
      reference,
      kind: 'buy',
      customer_id: customer.id,
      msisdn: customer.msisdn,
      amount_cents: cents,
      price_cents_per_gram: price,
      grams_ug: gramsUg,
      status: reason ? 'review' : 'paid',
      failure_code: reason ? `c2b_${reason}` : null,
      failure_reason: reason ? REVIEW_MESSAGES[reason].slice(0, 300) : null,
      source_key: `c2b:${transId}`,
    });
    await trx('c2b_payments').where({ id: claimed.id }).update({ order_id: orderId, status: reason ? 'review' : 'credited', review_reason: reason });
    const t = catalogFor(customer.language);
    if (!reason) {
      const body = t.sms.buyReceipt({ receipt: transId, grams: formatGrams(gramsUg), kes: formatKes(cents), price: formatKes(price), balance: formatGrams(balanceUg) });
      await queueSms(trx, deps.outbox, { customerId: customer.id, msisdn: customer.msisdn, body, purpose: 'buy_receipt', dedupeKey: `buy-receipt-${orderId}` });
      return { outcome: { outcome: 'credited', orderId } as C2bOutcome, alerts: [] };
    }
    await reviewSms(trx, deps.outbox, customer, transId, cents);
    const alert = await alertFor(trx, { transId, orderId, reference, reason, cents, msisdn: customer.msisdn });
    return { outcome: { outcome: 'review', orderId, reason } as C2bOutcome, alerts: [alert] };
  });

  logOpsAlerts(deps.log, result.alerts);
  const o = result.outcome;
  deps.log[o.outcome === 'review' ? 'warn' : 'info'](
    { transId, phone: maskMsisdn(msisdn), amountCents: cents, outcome: o.outcome, ...(o.outcome === 'review' ? { reason: o.reason } : {}) },
    'c2b confirmation',
  );
  return o;
}

function reviewReason(customer: Customer | null, cents: number, limits: { minKes: number; maxKes: number }, freshPrice: boolean): C2bReviewReason | null {
  if (!customer) return 'account_not_a_phone';
  const problem = amountProblem(cents, limits);
  if (problem === 'not_whole') return 'amount_not_whole';
  if (problem === 'below_minimum') return 'amount_below_minimum';
  if (problem === 'above_maximum') return 'amount_above_maximum';
  if (!freshPrice) return 'price_unavailable';
  return null;
}

async function reviewWithoutOrder(
  trx: Knex.Transaction,
  outbox: Outbox,
  p: { transId: string; customer: Customer | null; cents: number; reason: C2bReviewReason },
) {
  await trx('c2b_payments').where({ trans_id: p.transId }).update({ review_reason: p.reason });
  if (p.customer) await reviewSms(trx, outbox, p.customer, p.transId, p.cents);
  const alert = await alertFor(trx, { transId: p.transId, orderId: null, reference: null, reason: p.reason, cents: p.cents, msisdn: p.customer?.msisdn ?? null });
  return { outcome: { outcome: 'review', orderId: null, reason: p.reason } as C2bOutcome, alerts: [alert] };
}

/** "We received your M-Pesa payment <TransID> of KES X but could not add your gold yet…": a person will sort it out. */
function reviewSms(trx: Knex.Transaction, outbox: Outbox, customer: Customer, transId: string, cents: number): Promise<number> {
  const t = catalogFor(customer.language);
  return queueSms(trx, outbox, {
    customerId: customer.id,
    msisdn: customer.msisdn,
    body: t.sms.buyLateReview({ receipt: transId, kes: formatKes(cents) }),
    purpose: 'c2b_review',
    dedupeKey: `c2b-review-${transId}`,
  });
}

function alertFor(trx: Knex.Transaction, p: { transId: string; orderId: string | null; reference: string | null; reason: C2bReviewReason; cents: number; msisdn: Msisdn | null }) {
  return raiseOpsAlert(trx, {
    kind: 'c2b_payment_unallocated',
    severity: 'error',
    orderId: p.orderId,
    message: `a Paybill payment could not be turned into gold: ${REVIEW_MESSAGES[p.reason]}`,
    details: { transId: p.transId, reason: p.reason, amountKes: formatKes(p.cents), reference: p.reference, phone: maskMsisdn(p.msisdn) },
    dedupeKey: `c2b-unallocated-${p.transId}`,
  });
}

/**
 * With no fresh quote (the http feed is stale, or trading is paused by a price jump), the review order
 * needs a price for an operator's credit: the HIGHEST buy price the feed last knew (accepted or
 * paused), so a credit never gives more gold than either quote would. Null when none is known.
 */
async function highestKnownBuyPrice(prices: PriceSource): Promise<number | null> {
  if (!(prices instanceof HttpPriceFeed)) return null;
  const { accepted, paused } = await prices.status();
  const known = [accepted?.buyCentsPerGram, paused?.quote.buyCentsPerGram].filter((p): p is number => typeof p === 'number' && p > 0);
  return known.length > 0 ? Math.max(...known) : null;
}
