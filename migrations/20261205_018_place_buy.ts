import type { Knex } from 'knex';

/**
 * The USSD confirm in ONE statement (was 13 statements and a commit, each a round trip): place_buy_order
 * does what placeBuyOrder did in its transaction, in the same order, with the same answers:
 *  1. the customer's row lock (FOR NO KEY UPDATE, as checkDailyLimit takes it): two orders of one
 *     customer are decided one after the other and cannot pass the daily limit together;
 *  2. the daily limit (src/orders/daily-limits.ts, same arithmetic): a request already recorded under
 *     its source key passes; otherwise today's counted buys (Nairobi day, the database clock) plus this
 *     one must stay within the limit, else `daily_limit` with what is left, in whole KES, rounded down;
 *  3. one open buy per phone: another open buy of the phone (other source key) is `payment_pending`.
 *     Two sessions racing past this check meet the unique index orders_one_open_buy_per_msisdn: its
 *     error leaves the function unchanged, and the caller answers `payment_pending` as before;
 *  4. the order, idempotent on source_key: an order already there is answered (`exists`), nothing else
 *     is written; a new one gets its stk_payments row and the outbox row of its buy job.
 * The caller relays the outbox row after the commit (Outbox.relaySoon), as outbox.transaction did.
 * The statuses and the limit are passed in by the caller, from order-states.ts and the config: the
 * rules keep one home in TypeScript.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE FUNCTION place_buy_order(
      p_id uuid, p_reference text, p_customer_id bigint, p_msisdn text, p_amount_kes bigint, p_price_cents_per_gram bigint,
      p_grams_ug bigint, p_source_key text, p_limit_kes bigint, p_not_counted text[], p_open text[])
    RETURNS TABLE (o_result text, o_order_id uuid, o_reference text, o_remaining_kes bigint, o_outbox_id bigint)
    LANGUAGE plpgsql AS $$
    DECLARE
      repeat_id uuid;
      used_cents bigint;
      remaining_cents bigint;
      new_reference text;
      outbox_id bigint;
    BEGIN
      PERFORM 1 FROM customers WHERE id = p_customer_id FOR NO KEY UPDATE;
      SELECT id INTO repeat_id FROM orders WHERE source_key = p_source_key;
      IF repeat_id IS NULL THEN
        SELECT coalesce(sum(amount_cents), 0)::bigint INTO used_cents
          FROM orders
         WHERE customer_id = p_customer_id AND kind = 'buy' AND status <> ALL(p_not_counted)
           AND created_at >= (date_trunc('day', (now() AT TIME ZONE 'UTC') + interval '3 hours') - interval '3 hours') AT TIME ZONE 'UTC';
        remaining_cents := greatest(0, p_limit_kes * 100 - used_cents);
        IF p_amount_kes * 100 > remaining_cents THEN
          RETURN QUERY SELECT 'daily_limit'::text, NULL::uuid, NULL::text, remaining_cents / 100, NULL::bigint;
          RETURN;
        END IF;
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
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP FUNCTION place_buy_order(uuid, text, bigint, text, bigint, bigint, bigint, text, bigint, text[], text[])');
}
