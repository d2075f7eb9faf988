import { createDb } from '../../src/db/knex';
import { fundPool } from '../../src/ledger/fund-pool';
import { toStkResult, stkCallbackSchema } from '../../src/vendors/daraja-callbacks';
import { settleTogether } from '../../src/payments/buy/stk-callback-batcher';
import { settleStkCallback } from '../../src/payments/buy/settle-stk-callback';
import { settleMany } from '../../src/ledger/gold';
import { expectBooksBalanced, startTestService, waitFor, type TestService } from '../support/harness';
import { paidBody, prepareAwaitingOrders, type PreparedOrder } from '../support/stk-orders';

/**
 * The settlement batcher (src/payments/buy/settle-stk-batch.ts, stk-callback-batcher.ts) in the real service:
 * what a batch costs in statements, and what happens to a batch when a statement or the connection fails.
 */
jest.setTimeout(60_000);

const BATCH = 16;

describe('the STK settlement batcher', () => {
  let svc: TestService;
  let firstPhone = 30_000_000;
  const logLines: string[] = [];
  beforeAll(async () => {
    svc = await startTestService({ ROLE: 'web', LOG_LEVEL: 'info' }, { logDestination: { write: (line: string) => void logLines.push(line) } });
    await fundPool(svc.db, 10 ** 12, 'settle-batch tests');
  });
  afterEach(() => expectBooksBalanced(svc.db));
  afterAll(() => svc.close());

  const prepare = (n: number, tag: string) => {
    firstPhone += 1000;
    return prepareAwaitingOrders(svc.db, n, { tag, firstPhone });
  };
  const receiptOf = (tag: string, i: number) => `${tag.toUpperCase()}R${String(i).padStart(4, '0')}`;
  const settleAll = (orders: PreparedOrder[], tag: string) =>
    Promise.allSettled(orders.map((o, i) => {
      const body = paidBody(o, receiptOf(tag, i));
      return svc.running.services.stkCallbacks.settle(toStkResult(stkCallbackSchema.parse(body)), body);
    }));

  /** Every order paid once: one posted resolution, one receipt SMS with its outbox row, one `settled` callback row. */
  async function expectSettledOnce(orders: PreparedOrder[], tag: string, positions = orders.map((_, i) => i)) {
    for (const [k, o] of orders.entries()) {
      const i = positions[k]!;
      expect(await svc.db('orders').where({ id: o.id }).first('status')).toEqual({ status: 'paid' });
      expect(await svc.db('stk_payments').where({ order_id: o.id }).first('mpesa_receipt', 'settled_by', 'matched_by')).toEqual({ mpesa_receipt: receiptOf(tag, i), settled_by: 'callback', matched_by: 'checkout_id' });
      expect(await svc.db('transfers').where({ pending_id: `buy-${o.id}` }).select('status')).toEqual([{ status: 'posted' }]);
      const sms = await svc.db('sms_messages').where({ dedupe_key: `buy-receipt-${o.id}` }).select('id', 'body');
      expect(sms).toHaveLength(1);
      expect(sms[0].body).toContain(receiptOf(tag, i));
      expect(await svc.db('outbox').where({ job_id: `sms-${sms[0].id}` }).count({ n: '*' })).toEqual([{ n: 1 }]);
      expect((await svc.db('mpesa_callbacks').where({ checkout_request_id: o.checkoutRequestId }).select('outcome')).map((r) => r.outcome)).toEqual(['settled']);
    }
  }

  function countStatements() {
    const sql: string[] = [];
    const on = (q: { sql: string }) => sql.push(q.sql.trim());
    svc.db.on('query', on);
    return { sql, stop: () => void svc.db.off('query', on) };
  }

  test(`when ${BATCH} paid callbacks arrive together, then they are settled in one transaction of a fixed number of statements (not ${BATCH}x), relayed in one go, and each acknowledged after the COMMIT`, async () => {
    const orders = await prepare(BATCH, 'stmt');
    const counter = (name: string) => async () => {
      const values = (await svc.running.services.metrics.registry.getSingleMetric(name)!.get()).values;
      return Object.fromEntries(values.map((v) => [JSON.stringify(v.labels), v.value]));
    };
    const [callbacksBefore, resultsBefore] = [await counter('mpesa_callbacks_total')(), await counter('mpesa_stk_results_total')()];
    logLines.length = 0;
    const counted = countStatements();
    const outcomes = await settleAll(orders, 'stmt');
    counted.stop();
    // The same metrics and log lines as one by one: one per callback, phones never in them.
    const delta = (after: Record<string, number>, before: Record<string, number>, key: string) => (after[key] ?? 0) - (before[key] ?? 0);
    expect(delta(await counter('mpesa_callbacks_total')(), callbacksBefore, JSON.stringify({ outcome: 'settled' }))).toBe(BATCH);
    expect(delta(await counter('mpesa_stk_results_total')(), resultsBefore, JSON.stringify({ result_code: 0 }))).toBe(BATCH);
    const lines = logLines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'stk callback');
    expect(lines.map((l) => [l.level, l.checkoutRequestId, l.resultCode, l.outcome]).sort()).toEqual(orders.map((o) => [30, o.checkoutRequestId, 0, 'settled']).sort());
    for (const o of orders) expect(logLines.join('\n')).not.toContain(o.msisdn);
    expect(outcomes.map((o) => (o.status === 'fulfilled' ? o.value : String(o.reason)))).toEqual(Array(BATCH).fill('settled'));
    const commits = counted.sql.filter((s) => /^commit/i.test(s)).length;
    // BEGIN, lock the orders, read the payments, UPDATE stk_payments, UPDATE orders, INSERT the mpesa_callbacks rows, post
    // the reservations, INSERT the SMS rows, INSERT their outbox rows, COMMIT; then the relay: one UPDATE marking the
    // rows (their jobs added from memory; the UPDATE commits by itself).
    expect({ statements: counted.sql.length, commits }).toEqual({ statements: 11, commits: 1 });
    expect(counted.sql[counted.sql.length - 1]).toMatch(/^update "outbox" set "relayed_at"/);
    expect(counted.sql.filter((s) => s.includes('ledger_resolve_transfers'))).toHaveLength(1);
    await expectSettledOnce(orders, 'stmt');
    expect(await svc.db('outbox').whereIn('job_id', (await svc.db('sms_messages').whereIn('dedupe_key', orders.map((o) => `buy-receipt-${o.id}`)).select('id')).map((r) => `sms-${r.id}`)).whereNull('relayed_at').count({ n: '*' })).toEqual([{ n: 0 }]);
  });

  test('when one callback comes alone, then it is settled one by one exactly as before the batcher (12 statements: 15 before the one-statement relay)', async () => {
    const [o] = await prepare(1, 'alone');
    const counted = countStatements();
    expect((await settleAll([o!], 'alone'))[0]).toEqual({ status: 'fulfilled', value: 'settled' });
    counted.stop();
    expect(counted.sql.length).toBe(12);
    await expectSettledOnce([o!], 'alone');
  });

  test('when a batch holds copies of one callback, a failure, and a reused receipt, then only the common case is batched and the rest is settled one by one after it, as one by one would', async () => {
    const orders = await prepare(5, 'mix');
    const body = (i: number, receipt = receiptOf('mix', i)) => paidBody(orders[i]!, receipt);
    const [held] = await prepare(1, 'mixheld');
    expect(await settleTogether(svc.running.services, [{ result: toStkResult(stkCallbackSchema.parse(paidBody(held!, 'MIXHELD001'))), rawPayload: paidBody(held!, 'MIXHELD001') }])).toEqual(['settled']);
    const items = [body(0), body(0), body(1), { Body: { stkCallback: { MerchantRequestID: 'mr-x', CheckoutRequestID: orders[2]!.checkoutRequestId, ResultCode: 1032, ResultDesc: 'Request cancelled by user' } } }, body(3, receiptOf('mix', 1)), body(4, 'MIXHELD001')];
    const answers = await settleTogether(svc.running.services, items.map((b) => ({ result: toStkResult(stkCallbackSchema.parse(b)), rawPayload: b })));
    // The first copy and order 1 in the batch; the second copy (same CheckoutRequestID), the failure, the receipt reused
    // within the batch and the receipt another payment already holds not (the last is a mismatch: review).
    expect(answers).toEqual(['settled', 'deferred', 'settled', 'deferred', 'deferred', 'deferred']);
  });

  test('when the ledger already released the reservation of an order still awaiting its result, then the batch leaves that callback to the one-by-one path (which credits it from a fresh reservation)', async () => {
    const orders = await prepare(3, 'released');
    await settleMany(svc.db, [{ pendingId: `buy-${orders[1]!.id}`, how: 'voided' }]);
    const items = orders.map((o, i) => paidBody(o, receiptOf('released', i))).map((b) => ({ result: toStkResult(stkCallbackSchema.parse(b)), rawPayload: b }));
    expect(await settleTogether(svc.running.services, items)).toEqual(['settled', 'deferred', 'settled']);
    expect(await settleStkCallback(svc.running.services, items[1]!.result, items[1]!.rawPayload)).toBe('settled');
    expect(await svc.db('transfers').where({ pending_id: `buy-${orders[1]!.id}-late` }).first('status')).toEqual({ status: 'posted' });
    await expectSettledOnce([orders[0]!, orders[2]!], 'released', [0, 2]);
  });

  test('when a statement throws in the middle of a batch, then the batch rolls back and every callback is settled one by one: the good ones settle once, only the poison one fails', async () => {
    const orders = await prepare(BATCH, 'poison');
    const poison = receiptOf('poison', 5);
    // A real fault in the database, not in our code: the UPDATE of stk_payments fails for one receipt (batch or not).
    await svc.db.raw(`CREATE FUNCTION test_poison() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.mpesa_receipt = '${poison}' THEN RAISE EXCEPTION 'poison receipt'; END IF; RETURN NEW; END $$`);
    await svc.db.raw(`CREATE TRIGGER test_poison BEFORE UPDATE ON stk_payments FOR EACH ROW EXECUTE FUNCTION test_poison()`);
    try {
      const counted = countStatements();
      const outcomes = await settleAll(orders, 'poison');
      counted.stop();
      expect(outcomes.map((o) => o.status)).toEqual(orders.map((_, i) => (i === 5 ? 'rejected' : 'fulfilled')));
      // The batch was tried (and rolled back) before the one-by-one settlements.
      expect(counted.sql.filter((s) => /^rollback/i.test(s)).length).toBeGreaterThanOrEqual(2);
      const good = orders.filter((_, i) => i !== 5);
      await expectSettledOnce(good, 'poison', orders.map((_, i) => i).filter((i) => i !== 5));
    } finally {
      await svc.db.raw('DROP TRIGGER test_poison ON stk_payments; DROP FUNCTION test_poison()');
    }
    const bad = orders[5]!;
    expect(await svc.db('orders').where({ id: bad.id }).first('status')).toEqual({ status: 'stk_sent' });
    expect(await svc.db('transfers').where({ pending_id: `buy-${bad.id}` }).count({ n: '*' })).toEqual([{ n: 0 }]);
    expect(await svc.db('mpesa_callbacks').where({ checkout_request_id: bad.checkoutRequestId }).count({ n: '*' })).toEqual([{ n: 0 }]);
  });

  test('when the batch\'s connection is terminated during its COMMIT, then nothing of it committed and every callback is settled one by one, once', async () => {
    const orders = await prepare(BATCH, 'kill');
    const admin = createDb(svc.config.databaseUrl!, { max: 2 });
    const KEY = 7_771_001;
    // A deferred constraint trigger runs AT COMMIT: it waits for an advisory lock the test holds, so the test can
    // end the backend exactly while it is committing.
    await admin.raw(`CREATE FUNCTION test_commit_gate() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_advisory_xact_lock(${KEY}); RETURN NULL; END $$`);
    await admin.raw(`CREATE CONSTRAINT TRIGGER test_commit_gate AFTER INSERT ON mpesa_callbacks DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_commit_gate()`);
    const conn = await admin.client.acquireConnection();
    try {
      await conn.query(`SELECT pg_advisory_lock(${KEY})`);
      const settling = settleAll(orders, 'kill');
      const committing = await waitFor(async () => {
        const { rows } = await admin.raw(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'advisory' AND query ILIKE 'commit%'`);
        return rows[0]?.pid as number | undefined;
      }, 'the batch to wait in its COMMIT');
      // It is the batch's: its 16 callback rows wait in that one transaction.
      const { rows: waiting } = await admin.raw(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'advisory'`);
      expect(waiting[0].n).toBe(1);
      await admin.raw('SELECT pg_terminate_backend(?)', [committing]);
      await conn.query(`SELECT pg_advisory_unlock(${KEY})`);
      const outcomes = await settling;
      expect(outcomes.map((o) => (o.status === 'fulfilled' ? o.value : String(o.reason)))).toEqual(Array(BATCH).fill('settled'));
    } finally {
      await admin.client.releaseConnection(conn);
      await admin.raw('DROP TRIGGER test_commit_gate ON mpesa_callbacks; DROP FUNCTION test_commit_gate()');
      await admin.destroy();
    }
    await expectSettledOnce(orders, 'kill');
  });
});
