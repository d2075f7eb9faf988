import nock from 'nock';
import { fundPool } from '../../src/ledger/fund-pool';
import {
  accountBalance, accountIdByCode, createPendingTransfer, ensureCustomerAccount, InsufficientFunds, resolvePendingTransfer,
} from '../../src/ledger/ledger';
import { expectBooksBalanced, startTestService, waitFor, type TestService } from '../support/harness';
import { dial } from '../support/http';
import { poolAccount } from '../support/flows';
import { mockAtSmsAccepted, mockDarajaToken, mockStkPushAccepted, type CapturedStk } from '../support/vendors';

describe('the gold ledger', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService();
  });
  afterEach(async () => {
    await expectBooksBalanced(svc.db);
    nock.cleanAll();
  });
  afterAll(() => svc.close());

  const customer = async (msisdn: string) => {
    const [c] = await svc.db('customers').insert({ msisdn }).onConflict('msisdn').merge().returning('id');
    return ensureCustomerAccount(svc.db, c.id);
  };

  test('when 20 people buy at once from a pool that holds 10 of their orders, then exactly 10 are reserved and the pool never goes negative', async () => {
    const pool = await poolAccount(svc);
    expect(pool.credits_posted - pool.debits_posted - pool.debits_pending).toBe(0);
    await fundPool(svc.db, 1_000_000); // 1 g; each order is 850 KES at 8,500/g = 0.1 g
    const stk: CapturedStk[] = [];
    mockDarajaToken();
    mockStkPushAccepted(stk, 20);
    mockAtSmsAccepted([], undefined, 20);

    const phones = Array.from({ length: 20 }, (_, i) => `+2547000001${String(i).padStart(2, '0')}`);
    const replies = await Promise.all(phones.map((p) => dial(svc.url, ['1', '850', '1'], { phoneNumber: p })));
    for (const r of replies) expect(r.last).toMatch(/^END Request received/);

    const statuses = await waitFor(async () => {
      const rows = await svc.db('orders').select('status');
      return rows.length === 20 && rows.every((r) => ['stk_sent', 'failed'].includes(r.status)) && rows.map((r) => r.status);
    }, 'all 20 buy jobs', 20_000);
    expect(statuses.filter((s) => s === 'stk_sent')).toHaveLength(10);
    expect(statuses.filter((s) => s === 'failed')).toHaveLength(10);
    expect(stk).toHaveLength(10);
    const after = await poolAccount(svc);
    expect(after.debits_pending).toBe(1_000_000);
    expect(after.credits_posted - after.debits_posted - after.debits_pending).toBe(0);
    expect(await svc.db('orders').where({ status: 'failed' }).whereNot({ failure_code: 'pool_empty' }).count({ n: '*' })).toEqual([{ n: 0 }]);
  });

  test('when anything tries to overdraw the pool, then the database itself refuses, even a bare UPDATE', async () => {
    const pool = await poolAccount(svc);
    const available = pool.credits_posted - pool.debits_posted - pool.debits_pending;
    await expect(
      svc.db('accounts').where({ code: 'pool' }).update({ debits_pending: svc.db.raw('debits_pending + ?', [available + 1]) }),
    ).rejects.toMatchObject({ code: '23514', constraint: 'accounts_no_overdraft' });
    expect(await poolAccount(svc)).toEqual(pool);
  });

  test('when two reservations race for the last gold, then one wins and the other gets InsufficientFunds', async () => {
    const poolId = await accountIdByCode(svc.db, 'pool');
    const before = await accountBalance(svc.db, poolId);
    await fundPool(svc.db, 500);
    const a = await customer('254700000301');
    const b = await customer('254700000302');
    const results = await Promise.allSettled([
      svc.db.transaction((trx) => createPendingTransfer(trx, { id: 'race-a', debitAccountId: poolId, creditAccountId: a, amount: before.available + 400, reference: 'race' })),
      svc.db.transaction((trx) => createPendingTransfer(trx, { id: 'race-b', debitAccountId: poolId, creditAccountId: b, amount: before.available + 400, reference: 'race' })),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(rejected.reason).toBeInstanceOf(InsufficientFunds);
    const winner = results[0]!.status === 'fulfilled' ? 'race-a' : 'race-b';
    await resolvePendingTransfer(svc.db, winner, 'voided');
  });

  test('when a reservation is created twice with the same id, then it reserves once', async () => {
    await fundPool(svc.db, 1000);
    const poolId = await accountIdByCode(svc.db, 'pool');
    const c = await customer('254700000303');
    const before = await accountBalance(svc.db, poolId);
    expect(await createPendingTransfer(svc.db, { id: 'twice', debitAccountId: poolId, creditAccountId: c, amount: 700, reference: 'x' })).toBe('created');
    expect(await createPendingTransfer(svc.db, { id: 'twice', debitAccountId: poolId, creditAccountId: c, amount: 700, reference: 'x' })).toBe('exists');
    expect((await accountBalance(svc.db, poolId)).pendingOut).toBe(before.pendingOut + 700);
    await expect(createPendingTransfer(svc.db, { id: 'twice', debitAccountId: poolId, creditAccountId: c, amount: 701, reference: 'x' })).rejects.toThrow(/different fields/);
    await resolvePendingTransfer(svc.db, 'twice', 'voided');
  });

  test('when a reservation is posted and voided at the same moment, then exactly one of them happens', async () => {
    await fundPool(svc.db, 1000);
    const poolId = await accountIdByCode(svc.db, 'pool');
    const c = await customer('254700000304');
    await createPendingTransfer(svc.db, { id: 'once', debitAccountId: poolId, creditAccountId: c, amount: 900, reference: 'x' });
    const [p, v] = await Promise.all([
      svc.db.transaction((trx) => resolvePendingTransfer(trx, 'once', 'posted')),
      svc.db.transaction((trx) => resolvePendingTransfer(trx, 'once', 'voided')),
    ]);
    const outcomes = [p.result, v.result].sort();
    expect(outcomes).toEqual(['already_resolved', 'resolved']);
    const resolution = await svc.db('transfers').where({ pending_id: 'once' }).select('status');
    expect(resolution).toHaveLength(1);
    const bal = await accountBalance(svc.db, c);
    expect(bal.pendingIn).toBe(0);
    expect(bal.posted).toBe(resolution[0].status === 'posted' ? 900 : 0);
  });

  test('when the pool is funded, then it is a posted transfer from issuance, not a bare balance update', async () => {
    const before = await poolAccount(svc);
    const id = await fundPool(svc.db, 2_500_000, 'test');
    const t = await svc.db('transfers').where({ id }).first();
    expect(t).toMatchObject({ status: 'posted', amount: 2_500_000, debit_account_id: await accountIdByCode(svc.db, 'issuance'), credit_account_id: before.id });
    expect((await poolAccount(svc)).credits_posted).toBe(before.credits_posted + 2_500_000);
  });

  test('when amounts are not positive integers, then the ledger refuses them', async () => {
    const poolId = await accountIdByCode(svc.db, 'pool');
    const c = await customer('254700000305');
    for (const amount of [0, -1, 1.5]) {
      await expect(createPendingTransfer(svc.db, { id: `bad-${amount}`, debitAccountId: poolId, creditAccountId: c, amount, reference: 'x' })).rejects.toThrow(RangeError);
    }
    await expect(svc.db('transfers').insert({ id: 'raw-bad', debit_account_id: poolId, credit_account_id: c, amount: 0, status: 'posted' })).rejects.toMatchObject({ code: '23514' });
  });
});
