import type { Knex } from 'knex';
import * as placeBuy from './20261205_018_place_buy';

/**
 * The daily limit gets ONE home: the SQL function check_daily_limit. place_buy_order (018) had its own copy of the
 * rule for buys, while sales and Paybill used checkDailyLimit in TypeScript; a table test kept the two in step. Now
 * place_buy_order calls check_daily_limit, and so does checkDailyLimit (src/orders/daily-limits.ts) for sales and
 * Paybill. What it decides, in this order, as before:
 *  1. the customer's row lock (FOR NO KEY UPDATE): two orders of one customer are decided one after the other and
 *     cannot pass the limit together;
 *  2. a request already recorded under its source key passes (its repeat must find its order, not a refusal);
 *  3. today's counted orders of the kind (Nairobi day, UTC+3 all year, by the database clock that stamps
 *     created_at) plus this one must stay within the limit. The answer is NULL when it may go ahead, else what is
 *     left today in whole KES, rounded down.
 * Amounts are in cents (a Paybill payment need not be whole shillings); the statuses not counted and the limit are
 * passed in by the caller, from order-states.ts and the config.
 *
 * Both functions run with sequential scans off, as 019 set for the others (plans cached from a young database);
 * CREATE OR REPLACE clears a function's settings, so place_buy_order's is set again.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE FUNCTION check_daily_limit(
      p_customer_id bigint, p_kind text, p_source_key text, p_amount_cents bigint, p_limit_kes bigint, p_not_counted text[])
    RETURNS bigint
    LANGUAGE plpgsql SET enable_seqscan = off AS $$
    DECLARE
      remaining_cents bigint;
    BEGIN
      PERFORM 1 FROM customers WHERE id = p_customer_id FOR NO KEY UPDATE;
      IF EXISTS (SELECT 1 FROM orders WHERE source_key = p_source_key) THEN RETURN NULL; END IF;
      SELECT greatest(0, p_limit_kes * 100 - coalesce(sum(amount_cents), 0))::bigint INTO remaining_cents
        FROM orders
       WHERE customer_id = p_customer_id AND kind = p_kind AND status <> ALL(p_not_counted)
         AND created_at >= (date_trunc('day', (now() AT TIME ZONE 'UTC') + interval '3 hours') - interval '3 hours') AT TIME ZONE 'UTC';
      IF p_amount_cents <= remaining_cents THEN RETURN NULL; END IF;
      RETURN remaining_cents / 100;
    END $$;
  `);
  await knex.raw(`
    CREATE OR REPLACE FUNCTION place_buy_order(
      p_id uuid, p_reference text, p_customer_id bigint, p_msisdn text, p_amount_kes bigint, p_price_cents_per_gram bigint,
      p_grams_ug bigint, p_source_key text, p_limit_kes bigint, p_not_counted text[], p_open text[])
    RETURNS TABLE (o_result text, o_order_id uuid, o_reference text, o_remaining_kes bigint, o_outbox_id bigint)
    LANGUAGE plpgsql AS $$
    DECLARE
      remaining_kes bigint;
      new_reference text;
      outbox_id bigint;
    BEGIN
      -- The customer's lock, a recorded repeat passing, today's counted buys: the rule's one home.
      remaining_kes := check_daily_limit(p_customer_id, 'buy', p_source_key, p_amount_kes * 100, p_limit_kes, p_not_counted);
      IF remaining_kes IS NOT NULL THEN
        RETURN QUERY SELECT 'daily_limit'::text, NULL::uuid, NULL::text, remaining_kes, NULL::bigint;
        RETURN;
      END IF;
      IF EXISTS (SELECT 1 FROM orders WHERE msisdn = p_msisdn AND kind = 'buy' AND status = ANY(p_open) AND source_key <> p_source_key) THEN
        RETURN QUERY SELECT 'payment_pending'::text, NULL::uuid, NULL::text, NULL::bigint, NULL::bigint;
        RETURN;
      END IF;
      INSERT INTO orders (id, reference, kind, customer_id, msisdn, amount_cents, price_cents_per_gram, grams_ug, status, source_key)
      VALUES (p_id, p_reference, 'buy', p_customer_id, p_msisdn, p_amount_kes * 100, p_price_cents_per_gram, p_grams_ug, 'created', p_source_key)
      ON CONFLICT (source_key) DO NOTHING
      RETURNING reference INTO new_reference;
      IF new_reference IS NULL THEN
        RETURN QUERY SELECT 'exists'::text, o.id, o.reference, NULL::bigint, NULL::bigint FROM orders o WHERE o.source_key = p_source_key;
        RETURN;
      END IF;
      INSERT INTO stk_payments (order_id, msisdn, amount_kes) VALUES (p_id, p_msisdn, p_amount_kes);
      INSERT INTO outbox (queue, job_id, payload) VALUES ('buy', 'buy-' || p_id, jsonb_build_object('orderId', p_id))
      ON CONFLICT (job_id) DO NOTHING RETURNING id INTO outbox_id;
      IF outbox_id IS NULL THEN SELECT id INTO outbox_id FROM outbox WHERE job_id = 'buy-' || p_id; END IF;
      RETURN QUERY SELECT 'created'::text, p_id, new_reference, NULL::bigint, outbox_id;
    END $$;
  `);
  await knex.raw(`ALTER FUNCTION ${PLACE_BUY_ORDER} SET enable_seqscan = off`);
}

const PLACE_BUY_ORDER = 'place_buy_order(uuid, text, bigint, text, bigint, bigint, bigint, text, bigint, text[], text[])';

export async function down(knex: Knex): Promise<void> {
  // place_buy_order as 018 made it and 019 set it.
  await knex.raw(`DROP FUNCTION ${PLACE_BUY_ORDER}`);
  await placeBuy.up(knex);
  await knex.raw(`ALTER FUNCTION ${PLACE_BUY_ORDER} SET enable_seqscan = off`);
  await knex.raw('DROP FUNCTION check_daily_limit(bigint, text, text, bigint, bigint, text[])');
}
