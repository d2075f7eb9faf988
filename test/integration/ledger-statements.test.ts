import { fundPool } from '../../src/ledger/fund-pool';
import {
  accountBalance, accountIdByCode, createPendingTransfer, ensureCustomerAccount, InsufficientFunds, resolvePendingTransfer, SYSTEM_ACCOUNTS,
} from '../../src/ledger/ledger';
import { expectBooksBalanced, startTestService, type TestService } from '../support/harness';

/**
 * The ledger moves a transfer's two account rows in ONE statement (lower id first) so the hot pool row is held for
 * as short a time as possible. These tests pin what that must not change: no deadlock whichever direction transfers
 * run, a refused reservation leaves the caller's transaction usable, and the resolution's report of the balance.
 */
describe('the ledger, one statement per transfer', () => {
  let svc: TestService;
  let pool: number;
  beforeAll(async () => {
    svc = await startTestService();
    pool = await accountIdByCode(svc.db, SYSTEM_ACCOUNTS.pool);
  });
  afterEach(() => expectBooksBalanced(svc.db));
  afterAll(() => svc.close());

  const customerAccount = async (msisdn: string) => {
    const [c] = await svc.db('customers').insert({ msisdn }).onConflict('msisdn').merge().returning('id');
    return ensureCustomerAccount(svc.db, c.id);
  };

  test('when a reservation is posted, then the result names the credited account and its posted balance right after the move', async () => {
    await fundPool(svc.db, 10_000_000);
    const account = await customerAccount('254711000101');
    await createPendingTransfer(svc.db, { id: 'stmt-post-1', debitAccountId: pool, creditAccountId: account, amount: 300_000, reference: 'r1' });
    expect(await resolvePendingTransfer(svc.db, 'stmt-post-1', 'posted')).toEqual({ result: 'resolved', creditAccountId: account, creditPosted: 300_000 });
    await createPendingTransfer(svc.db, { id: 'stmt-post-2', debitAccountId: pool, creditAccountId: account, amount: 200_000, reference: 'r2' });
    expect(await resolvePendingTransfer(svc.db, 'stmt-post-2', 'posted')).toEqual({ result: 'resolved', creditAccountId: account, creditPosted: 500_000 });
    expect(await resolvePendingTransfer(svc.db, 'stmt-post-2', 'voided')).toEqual({ result: 'already_resolved', as: 'posted' });
    expect((await accountBalance(svc.db, account)).posted).toBe(500_000);
  });

  test('when buys (pool to customer) and sells (customer to pool) of the same customers run at once, then none deadlocks and every one is applied', async () => {
    await fundPool(svc.db, 100_000_000);
    const accounts = [await customerAccount('254711000201'), await customerAccount('254711000202')];
    // Give each customer gold to sell.
    for (const [i, a] of accounts.entries()) {
      await createPendingTransfer(svc.db, { id: `stmt-seed-${i}`, debitAccountId: pool, creditAccountId: a, amount: 10_000_000, reference: 'seed' });
      await resolvePendingTransfer(svc.db, `stmt-seed-${i}`, 'posted');
    }
    const ops = Array.from({ length: 60 }, (_, i) => async () => {
      const a = accounts[i % 2]!;
      const sell = i % 3 === 0;
      const id = `stmt-mix-${i}`;
      await createPendingTransfer(svc.db, { id, debitAccountId: sell ? a : pool, creditAccountId: sell ? pool : a, amount: 1_000 + i, reference: 'mix' });
      await resolvePendingTransfer(svc.db, id, i % 4 === 0 ? 'voided' : 'posted');
    });
    const results = await Promise.allSettled(ops.map((op) => op()));
    expect(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
    const resolutions = await svc.db('transfers').where('pending_id', 'like', 'stmt-mix-%').count({ n: '*' });
    expect(resolutions).toEqual([{ n: 60 }]);
  });

  test('when a reservation cannot be covered inside a caller\'s transaction, then InsufficientFunds leaves that transaction usable and nothing moves', async () => {
    const account = await customerAccount('254711000301');
    const before = await accountBalance(svc.db, pool);
    await svc.db.transaction(async (trx) => {
      await expect(
        createPendingTransfer(trx, { id: 'stmt-too-big', debitAccountId: pool, creditAccountId: account, amount: before.available + 1, reference: 'big' }),
      ).rejects.toBeInstanceOf(InsufficientFunds);
      // The transaction goes on: this write commits with it.
      await trx('customers').where({ msisdn: '254711000301' }).update({ language: 'en' });
    });
    expect(await accountBalance(svc.db, pool)).toEqual(before);
    expect(await svc.db('transfers').where({ id: 'stmt-too-big' }).first()).toBeUndefined();
  });

  test('when a standalone reservation cannot be covered, then it throws InsufficientFunds naming the pool and leaves no transfer behind', async () => {
    const account = await customerAccount('254711000401');
    const { available } = await accountBalance(svc.db, pool);
    const refused = createPendingTransfer(svc.db, { id: 'stmt-too-big-2', debitAccountId: pool, creditAccountId: account, amount: available + 1, reference: 'big' });
    await expect(refused).rejects.toMatchObject({ name: 'InsufficientFunds', accountId: pool });
    expect(await svc.db('transfers').where({ id: 'stmt-too-big-2' }).first()).toBeUndefined();
  });
});
