import type { Knex } from 'knex';

/**
 * The plans inside the SQL functions of 017 and 018, and ledger_apply made lean.
 *
 * plpgsql prepares each statement of a function once per connection and, after a few calls, keeps a generic plan
 * for the connection's life. On a young database (a fresh deployment, every benchmark, every test) that plan is
 * made while `transfers` and `orders` hold a handful of rows and have no statistics yet, so it is a sequential
 * scan, and it stays one while the table grows: an 8-item post batch went from 1 ms to 25 ms over 24,000 batches
 * on one connection (the ledger benchmark's figures fell with every second of a round). Every lookup in these
 * functions is by a key that has an index, so the functions run with sequential scans off: the planner takes the
 * index whatever the statistics say.
 *
 * The open-buy check of place_buy_order compares the status with a list passed in (order-states.ts keeps the list),
 * which the partial unique index orders_one_open_buy_per_msisdn cannot serve; orders_buy_msisdn_idx can.
 *
 * ledger_apply (the LedgerBatcher's statement): a batch of one verb, all reservations or all resolutions, calls
 * that verb's function alone (it locks its own accounts in id order), without the combined lock query and the
 * empty call of the other; and a transfer that exists with other fields RAISES, so the whole statement rolls back
 * (it returned 'conflict' and the caller threw after an autocommit statement had already committed the others).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE INDEX orders_buy_msisdn_idx ON orders (msisdn, status) WHERE kind = 'buy'`);
  await knex.raw(`
    CREATE OR REPLACE FUNCTION ledger_apply(
      p_ids text[], p_debit bigint[], p_credit bigint[], p_amount bigint[], p_reference text[], p_timeout timestamptz[],
      p_pending text[], p_how text[],
      OUT created text[], OUT r_result text[], OUT r_as text[], OUT r_credit bigint[], OUT r_posted bigint[])
    LANGUAGE plpgsql AS $$
    BEGIN
      IF coalesce(array_length(p_ids, 1), 0) > 0 AND coalesce(array_length(p_pending, 1), 0) > 0 THEN
        -- Both verbs: every account of both locked first, in id order.
        PERFORM 1 FROM accounts
          WHERE id = ANY(p_debit || p_credit)
             OR id IN (SELECT debit_account_id FROM transfers WHERE id = ANY(p_pending) AND status = 'pending'
                       UNION SELECT credit_account_id FROM transfers WHERE id = ANY(p_pending) AND status = 'pending')
          ORDER BY id FOR UPDATE;
      END IF;
      IF coalesce(array_length(p_ids, 1), 0) > 0 THEN
        created := ledger_create_transfers(p_ids, p_debit, p_credit, p_amount, p_reference, p_timeout, 'pending');
        IF 'conflict' = ANY(created) THEN
          RAISE EXCEPTION 'transfer % exists with different fields', p_ids[array_position(created, 'conflict')];
        END IF;
      ELSE
        created := '{}';
      END IF;
      IF coalesce(array_length(p_pending, 1), 0) > 0 THEN
        SELECT array_agg(t.o_result ORDER BY t.ord), array_agg(t.o_as ORDER BY t.ord), array_agg(t.o_credit_account_id ORDER BY t.ord), array_agg(t.o_credit_posted ORDER BY t.ord)
          INTO r_result, r_as, r_credit, r_posted
          FROM ledger_resolve_transfers(p_pending, p_how) WITH ORDINALITY AS t(o_result, o_as, o_credit_account_id, o_credit_posted, ord);
      END IF;
    END $$;
  `);
  for (const f of FUNCTIONS) await knex.raw(`ALTER FUNCTION ${f} SET enable_seqscan = off`);
}

const FUNCTIONS = [
  'ledger_create_transfers(text[], bigint[], bigint[], bigint[], text[], timestamptz[], text)',
  'ledger_resolve_transfers(text[], text[])',
  'ledger_apply(text[], bigint[], bigint[], bigint[], text[], timestamptz[], text[], text[])',
  'place_buy_order(uuid, text, bigint, text, bigint, bigint, bigint, text, bigint, text[], text[])',
];

export async function down(knex: Knex): Promise<void> {
  for (const f of FUNCTIONS) await knex.raw(`ALTER FUNCTION ${f} RESET enable_seqscan`);
  await knex.raw('DROP INDEX IF EXISTS orders_buy_msisdn_idx');
  // ledger_apply as 017 made it.
  await knex.raw(`
    CREATE OR REPLACE FUNCTION ledger_apply(
      p_ids text[], p_debit bigint[], p_credit bigint[], p_amount bigint[], p_reference text[], p_timeout timestamptz[],
      p_pending text[], p_how text[],
      OUT created text[], OUT r_result text[], OUT r_as text[], OUT r_credit bigint[], OUT r_posted bigint[])
    LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM 1 FROM accounts
        WHERE id = ANY(p_debit || p_credit)
           OR id IN (SELECT debit_account_id FROM transfers WHERE id = ANY(p_pending) AND status = 'pending'
                     UNION SELECT credit_account_id FROM transfers WHERE id = ANY(p_pending) AND status = 'pending')
        ORDER BY id FOR UPDATE;
      created := ledger_create_transfers(p_ids, p_debit, p_credit, p_amount, p_reference, p_timeout, 'pending');
      SELECT array_agg(t.o_result ORDER BY t.ord), array_agg(t.o_as ORDER BY t.ord), array_agg(t.o_credit_account_id ORDER BY t.ord), array_agg(t.o_credit_posted ORDER BY t.ord)
        INTO r_result, r_as, r_credit, r_posted
        FROM ledger_resolve_transfers(p_pending, p_how) WITH ORDINALITY AS t(o_result, o_as, o_credit_account_id, o_credit_posted, ord);
    END $$;
  `);
}
