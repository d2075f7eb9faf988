import fc from 'fast-check';
import {
  accountIdByCode, applyTransfers, createPendingTransfer, createPostedTransfer, createTransfers, InsufficientFunds, resolvePendingTransfer,
  resolvePendingTransfers, SYSTEM_ACCOUNTS, type CreateOutcome, type Resolution, type ResolveOutcome,
} from '../../src/ledger/ledger';
import { LedgerBatcher } from '../../src/ledger/ledger-batcher';
import { reserveManyFromPool, settleMany } from '../../src/ledger/gold';
import { fundPool } from '../../src/ledger/fund-pool';
import { createDb, type Db } from '../../src/db/knex';
import { expectBooksBalanced, startTestService, type TestService } from '../support/harness';

/**
 * Differential: random ledger histories go through the one-by-one functions (one statement and commit per
 * transfer) and through the batched ones (ledger_create_transfers / ledger_resolve_transfers) with random batch
 * boundaries. Each path has its own pool and customers (same funding), so both run in one database; afterwards
 * every answer, every transfer row and every balance must be the same, role for role.
 */
jest.setTimeout(180_000);

const RUNS = Number(process.env.LEDGER_RUNS ?? 40);
const CUSTOMERS = 3;

type Op =
  | { kind: 'buy'; n: number; customer: number; amount: number } // reserve pool -> customer
  | { kind: 'sell'; n: number; customer: number; amount: number } // hold customer -> pool
  | { kind: 'resolve'; target: number; how: Resolution }; // resolve the target-th reservation (or an unknown id)

const opArb = (i: number): fc.Arbitrary<Op> =>
  fc.oneof(
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('buy' as const), n: fc.constant(i), customer: fc.nat(CUSTOMERS - 1), amount: fc.integer({ min: 1, max: 400 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('sell' as const), n: fc.constant(i), customer: fc.nat(CUSTOMERS - 1), amount: fc.integer({ min: 1, max: 300 }) }) },
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('resolve' as const), target: fc.nat(40), how: fc.constantFrom<Resolution>('posted', 'posted', 'voided', 'expired') }) },
  );

/** A history: ops, with some buys repeated word for word later (a retried job). */
const historyArb = fc
  .integer({ min: 1, max: 40 })
  .chain((len) => fc.tuple(...Array.from({ length: len }, (_, i) => opArb(i))))
  .chain((ops) => fc.tuple(fc.constant(ops), fc.array(fc.nat(ops.length - 1), { maxLength: 4 }), fc.array(fc.nat(ops.length + 4), { maxLength: 6 }), fc.integer({ min: 0, max: 2 ** 31 - 1 })))
  .map(([ops, dupAt, dupOf, seed]) => {
    const out: Op[] = [...ops];
    dupAt.forEach((at, k) => {
      const src = ops[(dupOf[k] ?? 0) % ops.length]!;
      if (src.kind !== 'resolve') out.splice(at, 0, src);
    });
    return { ops: out, seed };
  });

let nextPhone = 1;

interface Books {
  pool: number;
  customers: number[];
}

async function books(db: Db, tag: string, poolFunding: number): Promise<Books> {
  const issuance = await accountIdByCode(db, SYSTEM_ACCOUNTS.issuance);
  const [pool] = await db('accounts').insert({ code: `pool-${tag}`, kind: 'pool', must_not_overdraft: true }).returning('id');
  const customers: number[] = [];
  for (let c = 0; c < CUSTOMERS; c++) {
    const [cust] = await db('customers').insert({ msisdn: `2547${String(nextPhone++).padStart(8, '0')}` }).returning('id');
    const [acc] = await db('accounts').insert({ code: `customer:${cust.id}`, kind: 'customer', customer_id: cust.id, must_not_overdraft: true }).returning('id');
    customers.push(acc.id);
    await createPostedTransfer(db, { id: `${tag}:seed-${c}`, debitAccountId: issuance, creditAccountId: acc.id, amount: 250, reference: 'seed' });
  }
  if (poolFunding > 0) await createPostedTransfer(db, { id: `${tag}:fund`, debitAccountId: issuance, creditAccountId: pool.id, amount: poolFunding, reference: 'fund' });
  return { pool: pool.id, customers };
}

const transferOf = (b: Books, tag: string, op: Extract<Op, { kind: 'buy' | 'sell' }>) => ({
  id: `${tag}:t${op.n}`,
  debitAccountId: op.kind === 'buy' ? b.pool : b.customers[op.customer]!,
  creditAccountId: op.kind === 'buy' ? b.customers[op.customer]! : b.pool,
  amount: op.amount,
  reference: `ref-${op.n}`,
});
const targetId = (tag: string, op: Extract<Op, { kind: 'resolve' }>) => `${tag}:t${op.target}`;

type Answer = CreateOutcome | ResolveOutcome;

const roleOf = (b: Books) => (id: number) => (id === b.pool ? 'pool' : b.customers.includes(id) ? `c${b.customers.indexOf(id)}` : 'issuance');
/** An answer with the credited account named by its role. */
const roles = (b: Books) => (x: Answer) => (typeof x === 'object' && x.result === 'resolved' ? { ...x, creditAccountId: roleOf(b)(x.creditAccountId) } : x);

async function oneByOne(db: Db, b: Books, tag: string, ops: Op[]): Promise<Answer[]> {
  const answers: Answer[] = [];
  for (const op of ops) {
    if (op.kind === 'resolve') {
      try {
        answers.push(await resolvePendingTransfer(db, targetId(tag, op), op.how));
      } catch (err) {
        if (!/no pending transfer/.test((err as Error).message)) throw err;
        answers.push({ result: 'missing' });
      }
    } else {
      try {
        answers.push(await createPendingTransfer(db, transferOf(b, tag, op)));
      } catch (err) {
        if (!(err instanceof InsufficientFunds)) throw err;
        answers.push('insufficient');
      }
    }
  }
  return answers;
}

/**
 * The same ops, in the same order, cut into batches at random (and wherever the kind of op changes). A batch of
 * reservations followed by one of resolutions goes, at random, as one ledger_apply call (reservations first).
 */
async function batched(db: Db, b: Books, tag: string, ops: Op[], seed: number): Promise<Answer[]> {
  let rnd = seed || 1;
  const coin = () => ((rnd = (rnd * 1103515245 + 12345) & 0x7fffffff) % 3 === 0);
  const slices: Op[][] = [];
  let i = 0;
  while (i < ops.length) {
    const resolving = ops[i]!.kind === 'resolve';
    let j = i + 1;
    while (j < ops.length && (ops[j]!.kind === 'resolve') === resolving && !coin()) j++;
    slices.push(ops.slice(i, j));
    i = j;
  }
  const creates = (slice: Op[]) => slice.map((op) => transferOf(b, tag, op as Extract<Op, { kind: 'buy' | 'sell' }>));
  const resolves = (slice: Op[]) => slice.map((op) => ({ pendingId: targetId(tag, op as Extract<Op, { kind: 'resolve' }>), resolution: (op as Extract<Op, { kind: 'resolve' }>).how }));
  const answers: Answer[] = [];
  for (let k = 0; k < slices.length; k++) {
    const slice = slices[k]!;
    const next = slices[k + 1];
    if (slice[0]!.kind !== 'resolve' && next && next[0]!.kind === 'resolve' && coin()) {
      const { created, resolved } = await applyTransfers(db, creates(slice), resolves(next));
      answers.push(...created, ...resolved);
      k++;
    } else if (slice[0]!.kind === 'resolve') {
      answers.push(...(coin() ? (await applyTransfers(db, [], resolves(slice))).resolved : await resolvePendingTransfers(db, resolves(slice))));
    } else {
      answers.push(...(coin() ? (await applyTransfers(db, creates(slice), [])).created : await createTransfers(db, creates(slice), 'pending')));
    }
  }
  return answers;
}

/** Rows and balances with the path's tag and account ids replaced by roles, so the two paths compare. */
async function snapshot(db: Db, b: Books, tag: string) {
  const role = roleOf(b);
  const strip = (s: string | null) => (s === null ? null : s.replace(`${tag}:`, ''));
  const transfers = (await db('transfers').where('id', 'like', `${tag}:%`).orderBy('id').select('id', 'debit_account_id', 'credit_account_id', 'amount', 'status', 'pending_id', 'reference'))
    .map((t) => ({ ...t, id: strip(t.id), pending_id: strip(t.pending_id), debit_account_id: role(t.debit_account_id), credit_account_id: role(t.credit_account_id) }));
  const accounts = (await db('accounts').whereIn('id', [b.pool, ...b.customers]).orderBy('id').select('id', 'debits_pending', 'debits_posted', 'credits_pending', 'credits_posted'))
    .map((a) => ({ ...a, id: role(a.id) }));
  return { transfers, accounts };
}

/**
 * The differential itself: the same ops one by one (books `a<tag>`) and batched with seeded random boundaries (books
 * `b<tag>`), each on its own pool and customers with the same funding; answers, rows and balances must match.
 */
async function expectSameEitherWay(db: Db, tag: string, ops: Op[], seed: number, poolFunding: number): Promise<void> {
  const a = await books(db, `a${tag}`, poolFunding);
  const b = await books(db, `b${tag}`, poolFunding);
  const one = await oneByOne(db, a, `a${tag}`, ops);
  const many = await batched(db, b, `b${tag}`, ops, seed);
  expect(many.map(roles(b))).toEqual(one.map(roles(a)));
  expect(await snapshot(db, b, `b${tag}`)).toEqual(await snapshot(db, a, `a${tag}`));
}

describe('batched ledger = one-by-one ledger', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService();
  });
  afterAll(() => svc.close());

  // First in this file: its database is still young (a clone of the migrated template, tables nearly empty).
  test('the ledger functions keep using the indexes after the tables grow (no plan cached from a young database scans them)', async () => {
    // One connection: plpgsql keeps a plan per connection, made while this test database's transfers table is small.
    const db = createDb(svc.config.databaseUrl!, { max: 1 });
    // An ANALYZE by autovacuum after the filler would re-plan anyway and hide a missing fix.
    await svc.db.raw('ALTER TABLE transfers SET (autovacuum_enabled = false)');
    try {
      const b = await books(db, 'plan', 10_000_000);
      const pairs = async (ids: string[], on: Db = db) => {
        await applyTransfers(on, ids.map((id) => ({ id, debitAccountId: b.pool, creditAccountId: b.customers[0]!, amount: 1, reference: 'r' })), []);
        await applyTransfers(on, [], ids.map((pendingId) => ({ pendingId, resolution: 'posted' as const })));
      };
      // Past plpgsql's five custom plans: from then on a generic plan, made now, is kept for this connection.
      for (let i = 0; i < 12; i++) await pairs(Array.from({ length: 8 }, (_, k) => `plan:${i}:${k}`));
      await db.raw(
        `INSERT INTO transfers (id, debit_account_id, credit_account_id, amount, status, reference)
         SELECT 'plan-filler:' || g, ?, ?, 1, 'posted', 'filler' FROM generate_series(1, 20000) g`,
        [b.customers[1]!, b.customers[2]!],
      );
      // The counters of the current transaction: how this very call read the tables.
      const scans = await db.transaction(async (trx) => {
        await pairs(Array.from({ length: 8 }, (_, k) => `plan:x:${k}`), trx);
        // Rows read as well as sequential scans: with enable_seqscan off, a wrong plan is a whole index read instead.
        const r = (await trx.raw(`SELECT coalesce(sum(seq_scan), 0)::int seq, coalesce(sum(seq_tup_read + coalesce(idx_tup_fetch, 0)), 0)::int n FROM pg_stat_xact_user_tables WHERE relname IN ('transfers', 'orders')`)).rows[0];
        return { seqScans: r.seq, fewRows: r.n < 1000 };
      });
      expect(scans).toEqual({ seqScans: 0, fewRows: true });
    } finally {
      // The filler moved gold between two customers outside the accounts' balances: take it out again.
      await db.raw(`DELETE FROM transfers WHERE id LIKE 'plan-filler:%'`);
      await db.destroy();
      await svc.db.raw('ALTER TABLE transfers RESET (autovacuum_enabled)');
    }
  });

  test('random histories (buys, sells, posts, voids, expiries, retried reservations, unknown ids, a pool that runs dry) leave the same answers, rows and balances either way', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(historyArb, fc.integer({ min: 0, max: 3000 }), async ({ ops, seed }, poolFunding) => {
        run++;
        await expectSameEitherWay(svc.db, `${run}`, ops, seed, poolFunding);
      }),
      { numRuns: RUNS },
    );
    await expectBooksBalanced(svc.db);
  });

  test('histories where nothing is refused or repeated (the one-statement path of both functions) leave the same answers, rows and balances, running balances included', async () => {
    // Every reservation fits and every resolution targets a distinct open reservation, so each batch takes the
    // set-based path; posts of buys (pool debited) and of sales (pool credited) mix in one batch, so the balance each
    // resolution reports must be summed in order.
    const cleanArb = fc
      .array(fc.record({ sell: fc.boolean(), customer: fc.nat(CUSTOMERS - 1), amount: fc.integer({ min: 1, max: 20 }) }), { minLength: 1, maxLength: 24 })
      .chain((made) => fc.tuple(fc.constant(made), fc.shuffledSubarray(made.map((_, i) => i), { minLength: made.length }), fc.array(fc.constantFrom<Resolution>('posted', 'posted', 'voided', 'expired'), { minLength: made.length, maxLength: made.length }), fc.integer({ min: 0, max: 2 ** 31 - 1 })));
    let run = 0;
    await fc.assert(
      fc.asyncProperty(cleanArb, async ([made, order, hows, seed]) => {
        run++;
        const ops: Op[] = [
          ...made.map((m, n): Op => ({ kind: m.sell ? 'sell' : 'buy', n, customer: m.customer, amount: m.amount })),
          ...order.map((target, k): Op => ({ kind: 'resolve', target, how: hows[k]! })),
        ];
        await expectSameEitherWay(svc.db, `c${run}`, ops, seed, 10_000);
      }),
      { numRuns: RUNS },
    );
    await expectBooksBalanced(svc.db);
  });

  test('an item the pool cannot cover is answered insufficient and its neighbours in the batch go through', async () => {
    const b = await books(svc.db, 'dry', 100);
    const results = await createTransfers(svc.db, [
      { id: 'dry:1', debitAccountId: b.pool, creditAccountId: b.customers[0]!, amount: 60, reference: 'r' },
      { id: 'dry:2', debitAccountId: b.pool, creditAccountId: b.customers[1]!, amount: 60, reference: 'r' },
      { id: 'dry:3', debitAccountId: b.pool, creditAccountId: b.customers[2]!, amount: 40, reference: 'r' },
      { id: 'dry:1', debitAccountId: b.pool, creditAccountId: b.customers[0]!, amount: 60, reference: 'r' },
    ], 'pending');
    expect(results).toEqual(['created', 'insufficient', 'created', 'exists']);
    const pool = await svc.db('accounts').where({ id: b.pool }).first();
    expect(pool.credits_posted - pool.debits_posted - pool.debits_pending).toBe(0);
    await expectBooksBalanced(svc.db);
  });

  test('a transfer id reused with other fields throws, and the batch holding it moves nothing', async () => {
    const b = await books(svc.db, 'clash', 1000);
    await createPendingTransfer(svc.db, { id: 'clash:1', debitAccountId: b.pool, creditAccountId: b.customers[0]!, amount: 10, reference: 'r' });
    const before = await snapshot(svc.db, b, 'clash');
    await expect(
      svc.db.transaction((trx) =>
        createTransfers(trx, [
          { id: 'clash:2', debitAccountId: b.pool, creditAccountId: b.customers[1]!, amount: 10, reference: 'r' },
          { id: 'clash:1', debitAccountId: b.pool, creditAccountId: b.customers[0]!, amount: 11, reference: 'r' },
        ], 'pending'),
      ),
    ).rejects.toThrow('exists with different fields');
    expect(await snapshot(svc.db, b, 'clash')).toEqual(before);
  });

  test('ledger_apply on its own (autocommit, as LedgerBatcher sends it) with a reused id applies nothing of the batch', async () => {
    const b = await books(svc.db, 'clash2', 1000);
    await createPendingTransfer(svc.db, { id: 'clash2:1', debitAccountId: b.pool, creditAccountId: b.customers[0]!, amount: 10, reference: 'r' });
    const before = await snapshot(svc.db, b, 'clash2');
    await expect(
      applyTransfers(svc.db, [
        { id: 'clash2:2', debitAccountId: b.pool, creditAccountId: b.customers[1]!, amount: 10, reference: 'r' },
        { id: 'clash2:1', debitAccountId: b.pool, creditAccountId: b.customers[0]!, amount: 11, reference: 'r' },
      ], []),
    ).rejects.toThrow('exists with different fields');
    expect(await snapshot(svc.db, b, 'clash2')).toEqual(before);
  });

  test('the batcher answers every concurrent caller from batches, and a batch that fails falls back to one-by-one so only the bad item fails', async () => {
    const b = await books(svc.db, 'bat', 10_000);
    const batcher = new LedgerBatcher(svc.db, 16);
    // The batcher sends its statement on a pooled connection directly (not through knex's query builder): count there.
    const sql: string[] = [];
    const acquire = svc.db.client.acquireConnection.bind(svc.db.client);
    svc.db.client.acquireConnection = async () => {
      const conn = await acquire();
      if (!conn.countedForTest) {
        const query = conn.query.bind(conn);
        conn.query = (...args: unknown[]) => {
          const q = args[0] as string | { text?: string };
          sql.push(typeof q === 'string' ? q : String(q?.text));
          return query(...args);
        };
        conn.countedForTest = true;
      }
      return conn;
    };
    try {
      const reserved = await Promise.all(Array.from({ length: 40 }, (_, i) => batcher.reserve({ id: `bat:${i}`, debitAccountId: b.pool, creditAccountId: b.customers[i % CUSTOMERS]!, amount: 10, reference: 'r' })));
      expect(reserved).toEqual(Array(40).fill('created'));
      // 40 callers in at most ceil(40 / 16) + 1 statements: they were batched, not sent one by one.
      const statements = sql.filter((s) => s.includes('ledger_apply')).length;
      expect(statements).toBeGreaterThanOrEqual(1);
      expect(statements).toBeLessThanOrEqual(4);
      // A poison item (an amount that is not a positive integer is refused in SQL too) in a batch of good ones.
      const mixed = await Promise.allSettled([
        batcher.resolve('bat:0', 'posted'),
        batcher.reserve({ id: 'bat:bad', debitAccountId: b.pool, creditAccountId: 999_999_999, amount: 10, reference: 'r' }),
        batcher.reserve({ id: 'bat:40', debitAccountId: b.pool, creditAccountId: b.customers[0]!, amount: 10, reference: 'r' }),
        batcher.reserve({ id: 'bat:41', debitAccountId: b.pool, creditAccountId: b.customers[1]!, amount: 10, reference: 'r' }),
      ]);
      expect(mixed.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
      expect((mixed[0] as PromiseFulfilledResult<ResolveOutcome>).value).toMatchObject({ result: 'resolved' });
      expect(await svc.db('transfers').whereIn('id', ['bat:40', 'bat:41']).count({ n: '*' })).toEqual([{ n: 2 }]);
      expect(await svc.db('transfers').where({ id: 'bat:bad' }).first()).toBeUndefined();
    } finally {
      svc.db.client.acquireConnection = acquire;
    }
    await expectBooksBalanced(svc.db);
  });

  test('reserveManyFromPool opens missing customer accounts, reserves in order until the pool runs dry, and settleMany posts them', async () => {
    const ids: number[] = [];
    for (let i = 0; i < 3; i++) ids.push((await svc.db('customers').insert({ msisdn: `2547${String(nextPhone++).padStart(8, '0')}` }).returning('id'))[0].id);
    const pool = await accountIdByCode(svc.db, SYSTEM_ACCOUNTS.pool);
    const before = await svc.db('accounts').where({ id: pool }).first();
    const available = before.credits_posted - before.debits_posted - before.debits_pending;
    await fundPool(svc.db, 700 - available > 0 ? 700 - available : 1);
    const now = await svc.db('accounts').where({ id: pool }).first();
    const left = now.credits_posted - now.debits_posted - now.debits_pending;
    const moves = [
      { id: 'many-1', customerId: ids[0]!, gramsUg: left - 100, reference: 'r1' },
      { id: 'many-2', customerId: ids[1]!, gramsUg: 101, reference: 'r2' },
      { id: 'many-3', customerId: ids[2]!, gramsUg: 100, reference: 'r3' },
      { id: 'many-1', customerId: ids[0]!, gramsUg: left - 100, reference: 'r1' },
    ];
    const results = await svc.db.transaction((trx) => reserveManyFromPool(trx, moves));
    expect(results).toEqual(['reserved', 'insufficient', 'reserved', 'exists']);
    expect(await svc.db('accounts').whereIn('customer_id', ids).count({ n: '*' })).toEqual([{ n: 3 }]);
    const settled = await svc.db.transaction((trx) => settleMany(trx, [{ pendingId: 'many-1', how: 'posted' }, { pendingId: 'many-2', how: 'posted' }, { pendingId: 'many-3', how: 'voided' }, { pendingId: 'many-1', how: 'voided' }]));
    expect(settled.map((r) => r.result)).toEqual(['resolved', 'missing', 'resolved', 'already_resolved']);
    expect(settled[0]).toMatchObject({ creditPosted: left - 100 });
    await expectBooksBalanced(svc.db);
  });
});
