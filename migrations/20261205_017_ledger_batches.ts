import type { Knex } from 'knex';

/**
 * Batched transfers (after TigerBeetle and pgledger): one call applies an array of transfers, or of
 * resolutions, in the caller's transaction. What makes them safe is the same as for one transfer:
 *  - every account the batch touches is locked first, lowest id first: the order single transfers
 *    take their two locks in, so batches and single transfers never deadlock;
 *  - overdraft is decided ITEM BY ITEM, in input order, against the balance left by the items before
 *    it: an item the debit account cannot cover is answered `insufficient` and the others go on (one
 *    CHECK violation would abort everyone). The accounts_no_overdraft CHECK still judges the final
 *    UPDATE, so a bug here cannot overdraw anything;
 *  - each account row is updated ONCE per batch, with the summed changes (the hot pool row gets one
 *    new row version per batch instead of one per transfer);
 *  - transfer ids and resolutions stay unique: an id seen before (in the table or earlier in the same
 *    batch) is `exists`; a reservation resolved before is `already_resolved`, with how.
 * Plans inside plpgsql are prepared once per connection, so a batch also pays no planning per item.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE FUNCTION ledger_create_transfers(
      p_ids text[], p_debit bigint[], p_credit bigint[], p_amount bigint[], p_reference text[], p_timeout timestamptz[], p_status text)
    RETURNS text[] LANGUAGE plpgsql AS $$
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
    CREATE FUNCTION ledger_resolve_transfers(p_pending text[], p_how text[])
    RETURNS TABLE (o_result text, o_as text, o_credit_account_id bigint, o_credit_posted bigint) LANGUAGE plpgsql AS $$
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
  // Reservations and resolutions in one call and one commit (the LedgerBatcher's statement): every account of
  // both locked first, in id order, then the reservations applied, then the resolutions.
  await knex.raw(`
    CREATE FUNCTION ledger_apply(
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

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP FUNCTION IF EXISTS ledger_apply(text[], bigint[], bigint[], bigint[], text[], timestamptz[], text[], text[])');
  await knex.raw('DROP FUNCTION IF EXISTS ledger_resolve_transfers(text[], text[])');
  await knex.raw('DROP FUNCTION IF EXISTS ledger_create_transfers(text[], bigint[], bigint[], bigint[], text[], timestamptz[], text)');
}
