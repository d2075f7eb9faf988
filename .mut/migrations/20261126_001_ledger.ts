import type { Knex } from 'knex';

/**
 * Two-phase double-entry ledger after TigerBeetle. Balances live on the account row and every
 * transfer changes a debit side and a credit side by the same amount, so the books balance by
 * construction. The overdraft rule is a CHECK on the row: the same UPDATE that reserves gold fails
 * if it would take the pool (or a customer) below zero, whatever the application does.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('customers', (t) => {
    t.bigIncrements('id');
    t.text('msisdn').notNullable().unique();
    t.text('language').notNullable().defaultTo('en');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });

  await knex.schema.createTable('accounts', (t) => {
    t.bigIncrements('id');
    t.text('code').notNullable().unique();
    t.text('kind').notNullable();
    t.bigInteger('customer_id').unique().references('customers.id');
    t.boolean('must_not_overdraft').notNullable();
    t.bigInteger('debits_pending').notNullable().defaultTo(0);
    t.bigInteger('debits_posted').notNullable().defaultTo(0);
    t.bigInteger('credits_pending').notNullable().defaultTo(0);
    t.bigInteger('credits_posted').notNullable().defaultTo(0);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`
    ALTER TABLE accounts
      ADD CONSTRAINT accounts_kind CHECK (kind IN ('issuance', 'pool', 'customer')),
      ADD CONSTRAINT accounts_customer_link CHECK ((kind = 'customer') = (customer_id IS NOT NULL)),
      ADD CONSTRAINT accounts_non_negative CHECK (
        debits_pending >= 0 AND debits_posted >= 0 AND credits_pending >= 0 AND credits_posted >= 0),
      ADD CONSTRAINT accounts_no_overdraft CHECK (
        NOT must_not_overdraft OR credits_posted - debits_posted - debits_pending >= 0)
  `);

  await knex.schema.createTable('transfers', (t) => {
    t.text('id').primary();
    t.bigInteger('debit_account_id').notNullable().references('accounts.id');
    t.bigInteger('credit_account_id').notNullable().references('accounts.id');
    t.bigInteger('amount').notNullable();
    t.text('status').notNullable();
    // A post, void or expiry is its own row pointing at the pending transfer; the unique index
    // makes "resolve this reservation" happen at most once, whoever races for it.
    t.text('pending_id').unique().references('transfers.id');
    t.text('reference');
    t.timestamp('timeout_at', { useTz: true });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`
    ALTER TABLE transfers
      ADD CONSTRAINT transfers_amount_positive CHECK (amount > 0),
      ADD CONSTRAINT transfers_distinct_accounts CHECK (debit_account_id <> credit_account_id),
      ADD CONSTRAINT transfers_status CHECK (status IN ('pending', 'posted', 'voided', 'expired')),
      -- a reservation points at nothing; a void or expiry always resolves a reservation
      ADD CONSTRAINT transfers_resolution_shape CHECK (
        (status <> 'pending' OR pending_id IS NULL) AND (status NOT IN ('voided', 'expired') OR pending_id IS NOT NULL))
  `);
  await knex.raw(`CREATE INDEX transfers_debit_idx ON transfers (debit_account_id, created_at)`);
  await knex.raw(`CREATE INDEX transfers_credit_idx ON transfers (credit_account_id, created_at)`);

  await knex.raw(`INSERT INTO accounts (code, kind, must_not_overdraft) VALUES ('issuance', 'issuance', false), ('pool', 'pool', true)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('transfers');
  await knex.schema.dropTable('accounts');
  await knex.schema.dropTable('customers');
}
