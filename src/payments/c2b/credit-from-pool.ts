import type { Knex } from 'knex';
import { accountIdByCode, createPendingTransfer, ensureCustomerAccount, InsufficientFunds, resolvePendingTransfer, SYSTEM_ACCOUNTS } from '../../ledger/ledger';

/**
 * Money already received, turned into gold at once: a reservation pool -> customer under `id`, posted
 * straight away, through the two-phase ledger like every other movement (the same two steps as a late
 * STK success in settle-stk-payment.ts and an operator's credit in resolve-review.ts). Runs in a
 * savepoint of the caller's transaction, so a pool that cannot cover the gold leaves that transaction
 * usable: the caller gets `pool_insufficient` and nothing moved. Idempotent on `id`.
 * Returns the customer's posted gold right after the post.
 */
export async function creditFromPool(
  trx: Knex.Transaction,
  t: { id: string; customerId: number; gramsUg: number; reference: string },
): Promise<{ ok: true; balanceUg: number } | { ok: false; reason: 'pool_insufficient' }> {
  try {
    return await trx.transaction(async (sp) => {
      const customerAccount = await ensureCustomerAccount(sp, t.customerId);
      await createPendingTransfer(sp, {
        id: t.id,
        debitAccountId: await accountIdByCode(sp, SYSTEM_ACCOUNTS.pool),
        creditAccountId: customerAccount,
        amount: t.gramsUg,
        reference: t.reference,
      });
      const posted = await resolvePendingTransfer(sp, t.id, 'posted');
      if (posted.result === 'resolved') return { ok: true as const, balanceUg: posted.creditPosted };
      const row = await sp('accounts').where({ id: customerAccount }).first('credits_posted', 'debits_posted');
      return { ok: true as const, balanceUg: Number(row.credits_posted) - Number(row.debits_posted) };
    });
  } catch (err) {
    if (err instanceof InsufficientFunds) return { ok: false, reason: 'pool_insufficient' };
    throw err;
  }
}
