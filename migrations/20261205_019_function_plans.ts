import type { Knex } from 'knex';
import * as ledgerBatches from './20261205_017_ledger_batches';

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
 * which the partial unique index orders_one_open_buy_per_msisdn cannot serve; orders_buy_msisdn_idx can (replaced by a plain index in 020: this partial one misled the daily-limit sum).
 *
 * ledger_create_transfers and ledger_resolve_transfers take the common case in one set-based statement: a batch in
 * which no item can be refused or found done already (every id new and distinct, every amount positive, every
 * guarded debit account covering all its debits of the batch; every pending id distinct, pending and unresolved)
 * is inserted with one INSERT ... SELECT instead of one INSERT per item (an 8-item batch: about 0.3 ms less in
 * Postgres). Anything else takes the item-by-item loop of 017, unchanged, and the answers are the loop's: the
 * running balance each resolution reports is summed in order (test/property/ledger-batch.test.ts compares both
 * paths with the one-by-one functions on random histories).
 *
 * ledger_apply (the LedgerBatcher's statement): a batch of one verb, all reservations or all resolutions, calls
 * that verb's function alone (it locks its own accounts in id order), without the combined lock query and the
 * empty call of the other; and a transfer that exists with other fields RAISES, so the whole statement rolls back
 * (it returned 'conflict' and the caller threw after an autocommit statement had already committed the others).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE INDEX orders_buy_msisdn_idx ON orders (msisdn, status) WHERE kind = 'buy'`);
  await knex.raw(`
    CREATE OR REPLACE FUNCTION ledger_create_transfers(
      p_ids text[], p_debit bigint[], p_credit bigint[], p_amount bigint[], p_reference text[], p_timeout timestamptz[], p_status text)
    RETURNS text[] LANGUAGE plpgsql SET enable_seqscan = off AS $$
    DECLARE
      n int := coalesce(array_length(p_ids, 1), 0);
      results text[] := '{}';
      acc bigint[]; avail bigint[]; guarded boolean[];
      dp bigint[]; dpo bigint[]; cp bigint[]; cpo bigint[];
      kd int; kc int; e record;
    BEGIN
      IF p_status NOT IN ('pending', 'posted') THEN RAISE EXCEPTION 'ledger_create_transfers: status %', p_status; END IF;
      IF n = 0 THEN RETURN results; END IF;
      SELECT array_agg(a.id ORDER BY a.id), array_agg(a.credits_posted - a.debits_posted - a.debits_pending ORDER BY a.id), array_agg(a.must_not_overdraft ORDER BY a.id)
        INTO acc, avail, guarded
        FROM (SELECT id, credits_posted, debits_posted, debits_pending, must_not_overdraft FROM accounts
               WHERE id = ANY(p_debit || p_credit) ORDER BY id FOR UPDATE) a;
      -- The common case in one INSERT: every amount positive, every account there, no id repeated or known, and every
      -- guarded debit account covering ALL its debits of the batch (then no item can be insufficient in any order).
      IF NOT EXISTS (SELECT 1 FROM transfers WHERE id = ANY(p_ids))
         AND (SELECT count(DISTINCT x) FROM unnest(p_ids) x) = n
         AND NOT EXISTS (
           SELECT 1 FROM unnest(p_debit, p_credit, p_amount) AS t(d, c, amt)
            WHERE amt IS NULL OR amt <= 0 OR NOT (d = ANY(acc)) OR NOT (c = ANY(acc)))
         AND NOT EXISTS (
           SELECT 1 FROM (SELECT d, sum(amt) AS total FROM unnest(p_debit, p_amount) AS t(d, amt) GROUP BY d) s
            WHERE guarded[array_position(acc, s.d)] AND avail[array_position(acc, s.d)] < s.total)
      THEN
        INSERT INTO transfers (id, debit_account_id, credit_account_id, amount, status, reference, timeout_at)
          SELECT t.id, t.d, t.c, t.amt, p_status, t.ref, t.tmo FROM unnest(p_ids, p_debit, p_credit, p_amount, p_reference, p_timeout) WITH ORDINALITY AS t(id, d, c, amt, ref, tmo, ord) ORDER BY t.ord;
        UPDATE accounts a SET debits_pending = a.debits_pending + s.s_dp, debits_posted = a.debits_posted + s.s_dpo,
                              credits_pending = a.credits_pending + s.s_cp, credits_posted = a.credits_posted + s.s_cpo
          FROM (SELECT x.acct, sum(x.x_dp) s_dp, sum(x.x_dpo) s_dpo, sum(x.x_cp) s_cp, sum(x.x_cpo) s_cpo FROM (
                  SELECT t.d AS acct, CASE WHEN p_status = 'pending' THEN t.amt ELSE 0 END x_dp, CASE WHEN p_status = 'posted' THEN t.amt ELSE 0 END x_dpo, 0::bigint x_cp, 0::bigint x_cpo FROM unnest(p_debit, p_amount) AS t(d, amt)
                  UNION ALL
                  SELECT t.c, 0, 0, CASE WHEN p_status = 'pending' THEN t.amt ELSE 0 END, CASE WHEN p_status = 'posted' THEN t.amt ELSE 0 END FROM unnest(p_credit, p_amount) AS t(c, amt)) x
                GROUP BY x.acct) s
         WHERE a.id = s.acct;
        RETURN array_fill('created'::text, ARRAY[n]);
      END IF;
      dp := array_fill(0::bigint, ARRAY[coalesce(array_length(acc, 1), 0)]);
      dpo := dp; cp := dp; cpo := dp;
      FOR i IN 1..n LOOP
        IF p_amount[i] IS NULL OR p_amount[i] <= 0 THEN RAISE EXCEPTION 'ledger_create_transfers: amount of % must be positive', p_ids[i]; END IF;
        kd := array_position(acc, p_debit[i]);
        kc := array_position(acc, p_credit[i]);
        IF kd IS NULL OR kc IS NULL THEN RAISE EXCEPTION 'ledger_create_transfers: no account for %', p_ids[i]; END IF;
        SELECT debit_account_id, credit_account_id, amount, status INTO e FROM transfers WHERE id = p_ids[i];
        IF FOUND THEN
          IF e.debit_account_id = p_debit[i] AND e.credit_account_id = p_credit[i] AND e.amount = p_amount[i] AND e.status = p_status
          THEN results := results || 'exists'::text;
          ELSE results := results || 'conflict'::text;
          END IF;
          CONTINUE;
        END IF;
        IF guarded[kd] AND avail[kd] < p_amount[i] THEN
          results := results || 'insufficient'::text;
          CONTINUE;
        END IF;
        INSERT INTO transfers (id, debit_account_id, credit_account_id, amount, status, reference, timeout_at)
          VALUES (p_ids[i], p_debit[i], p_credit[i], p_amount[i], p_status, p_reference[i], p_timeout[i]);
        avail[kd] := avail[kd] - p_amount[i];
        IF p_status = 'pending' THEN
          dp[kd] := dp[kd] + p_amount[i];
          cp[kc] := cp[kc] + p_amount[i];
        ELSE
          dpo[kd] := dpo[kd] + p_amount[i];
          cpo[kc] := cpo[kc] + p_amount[i];
          avail[kc] := avail[kc] + p_amount[i];
        END IF;
        results := results || 'created'::text;
      END LOOP;
      UPDATE accounts a SET debits_pending = a.debits_pending + d.dp, debits_posted = a.debits_posted + d.dpo,
                            credits_pending = a.credits_pending + d.cp, credits_posted = a.credits_posted + d.cpo
        FROM unnest(acc, dp, dpo, cp, cpo) AS d(id, dp, dpo, cp, cpo)
       WHERE a.id = d.id AND (d.dp <> 0 OR d.dpo <> 0 OR d.cp <> 0 OR d.cpo <> 0);
      RETURN results;
    END $$;
  `);
  await knex.raw(`
    CREATE OR REPLACE FUNCTION ledger_resolve_transfers(p_pending text[], p_how text[])
    RETURNS TABLE (o_result text, o_as text, o_credit_account_id bigint, o_credit_posted bigint) LANGUAGE plpgsql SET enable_seqscan = off AS $$
    DECLARE
      n int := coalesce(array_length(p_pending, 1), 0);
      acc bigint[]; posted bigint[];
      dp bigint[]; dpo bigint[]; cp bigint[]; cpo bigint[];
      kd int; kc int; p record; r record;
    BEGIN
      IF n = 0 THEN RETURN; END IF;
      SELECT array_agg(a.id ORDER BY a.id), array_agg(a.credits_posted - a.debits_posted ORDER BY a.id)
        INTO acc, posted
        FROM (SELECT id, credits_posted, debits_posted FROM accounts
               WHERE id IN (SELECT debit_account_id FROM transfers WHERE id = ANY(p_pending) AND status = 'pending'
                            UNION SELECT credit_account_id FROM transfers WHERE id = ANY(p_pending) AND status = 'pending')
               ORDER BY id FOR UPDATE) a;
      -- The common case in one statement: every resolution known, every id distinct, pending, not resolved yet, and
      -- no transfer already holding a resolution's id. Answers as the loop below would, item by item.
      IF (SELECT count(DISTINCT x) FROM unnest(p_pending) x) = n
         AND NOT EXISTS (SELECT 1 FROM unnest(p_how) h WHERE h IS NULL OR h NOT IN ('posted', 'voided', 'expired'))
         AND (SELECT count(*) FROM transfers WHERE id = ANY(p_pending) AND status = 'pending') = n
         AND NOT EXISTS (SELECT 1 FROM transfers WHERE pending_id = ANY(p_pending))
         AND NOT EXISTS (SELECT 1 FROM transfers WHERE id = ANY(ARRAY(SELECT u.pid || '/' || u.how FROM unnest(p_pending, p_how) AS u(pid, how))))
      THEN
        RETURN QUERY
          WITH u AS (
            SELECT u.ord, u.how, t.id AS pid, t.debit_account_id AS d, t.credit_account_id AS c, t.amount AS amt, t.reference AS ref
              FROM unnest(p_pending, p_how) WITH ORDINALITY AS u(pid, how, ord) JOIN transfers t ON t.id = u.pid),
          ins AS (
            INSERT INTO transfers (id, debit_account_id, credit_account_id, amount, status, pending_id, reference)
            SELECT u.pid || '/' || u.how, u.d, u.c, u.amt, u.how, u.pid, u.ref FROM u ORDER BY u.ord),
          upd AS (
            UPDATE accounts a SET debits_pending = a.debits_pending - s.s_dp, debits_posted = a.debits_posted + s.s_dpo,
                                  credits_pending = a.credits_pending - s.s_cp, credits_posted = a.credits_posted + s.s_cpo
              FROM (SELECT x.acct, sum(x.x_dp) s_dp, sum(x.x_dpo) s_dpo, sum(x.x_cp) s_cp, sum(x.x_cpo) s_cpo FROM (
                      SELECT u.d AS acct, u.amt AS x_dp, CASE WHEN u.how = 'posted' THEN u.amt ELSE 0 END AS x_dpo, 0::bigint AS x_cp, 0::bigint AS x_cpo FROM u
                      UNION ALL
                      SELECT u.c, 0, 0, u.amt, CASE WHEN u.how = 'posted' THEN u.amt ELSE 0 END FROM u) x
                    GROUP BY x.acct) s
             WHERE a.id = s.acct)
          SELECT 'resolved'::text, u.how, u.c,
                 posted[array_position(acc, u.c)] + (SELECT coalesce(sum(CASE WHEN v.c = u.c THEN v.amt ELSE 0 END - CASE WHEN v.d = u.c THEN v.amt ELSE 0 END), 0)::bigint
                                                       FROM u v WHERE v.ord <= u.ord AND v.how = 'posted')
            FROM u ORDER BY u.ord;
        RETURN;
      END IF;
      dp := array_fill(0::bigint, ARRAY[coalesce(array_length(acc, 1), 0)]);
      dpo := dp; cp := dp; cpo := dp;
      FOR i IN 1..n LOOP
        IF p_how[i] NOT IN ('posted', 'voided', 'expired') THEN RAISE EXCEPTION 'ledger_resolve_transfers: resolution %', p_how[i]; END IF;
        SELECT id, debit_account_id, credit_account_id, amount, reference INTO p FROM transfers WHERE id = p_pending[i] AND status = 'pending';
        IF NOT FOUND THEN
          o_result := 'missing'; o_as := NULL; o_credit_account_id := NULL; o_credit_posted := NULL;
          RETURN NEXT; CONTINUE;
        END IF;
        INSERT INTO transfers (id, debit_account_id, credit_account_id, amount, status, pending_id, reference)
          VALUES (p.id || '/' || p_how[i], p.debit_account_id, p.credit_account_id, p.amount, p_how[i], p.id, p.reference)
          ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
          SELECT status INTO r FROM transfers WHERE pending_id = p.id;
          o_result := 'already_resolved'; o_as := r.status; o_credit_account_id := NULL; o_credit_posted := NULL;
          RETURN NEXT; CONTINUE;
        END IF;
        kd := array_position(acc, p.debit_account_id);
        kc := array_position(acc, p.credit_account_id);
        dp[kd] := dp[kd] + p.amount;
        cp[kc] := cp[kc] + p.amount;
        IF p_how[i] = 'posted' THEN
          dpo[kd] := dpo[kd] + p.amount;
          cpo[kc] := cpo[kc] + p.amount;
          posted[kd] := posted[kd] - p.amount;
          posted[kc] := posted[kc] + p.amount;
        END IF;
        o_result := 'resolved'; o_as := p_how[i]; o_credit_account_id := p.credit_account_id; o_credit_posted := posted[kc];
        RETURN NEXT;
      END LOOP;
      UPDATE accounts a SET debits_pending = a.debits_pending - d.dp, debits_posted = a.debits_posted + d.dpo,
                            credits_pending = a.credits_pending - d.cp, credits_posted = a.credits_posted + d.cpo
        FROM unnest(acc, dp, dpo, cp, cpo) AS d(id, dp, dpo, cp, cpo)
       WHERE a.id = d.id AND (d.dp <> 0 OR d.dpo <> 0 OR d.cp <> 0 OR d.cpo <> 0);
    END $$;
  `);
  await knex.raw(`
    CREATE OR REPLACE FUNCTION ledger_apply(
      p_ids text[], p_debit bigint[], p_credit bigint[], p_amount bigint[], p_reference text[], p_timeout timestamptz[],
      p_pending text[], p_how text[],
      OUT created text[], OUT r_result text[], OUT r_as text[], OUT r_credit bigint[], OUT r_posted bigint[])
    LANGUAGE plpgsql AS $$
    BEGIN
      IF coalesce(array_length(p_ids, 1), 0) > 0 AND coalesce(array_length(p_pending, 1), 0) > 0 THEN
        -- Both verbs: every account of both locked first, in id order.
        -- One array of ids (not "= ANY(...) OR IN (subquery)", which the planner can only apply as a filter to every
        -- account): an index lookup whatever the number of accounts.
        PERFORM 1 FROM accounts
          WHERE id = ANY(p_debit || p_credit || ARRAY(
                  SELECT debit_account_id FROM transfers WHERE id = ANY(p_pending) AND status = 'pending'
                  UNION SELECT credit_account_id FROM transfers WHERE id = ANY(p_pending) AND status = 'pending'))
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
  await knex.raw(`ALTER FUNCTION ${FUNCTIONS[3]} RESET enable_seqscan`);
  await knex.raw('DROP INDEX IF EXISTS orders_buy_msisdn_idx');
  // The ledger functions as 017 made them.
  await ledgerBatches.down(knex);
  await ledgerBatches.up(knex);
}
