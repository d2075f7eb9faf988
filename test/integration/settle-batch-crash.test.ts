import { randomBytes } from 'node:crypto';
import { fundPool } from '../../src/ledger/fund-pool';
import { checkBooks } from '../../src/ledger/ledger';
import { baseEnv, deleteRedisKeys, waitFor } from '../support/harness';
import { postCallback } from '../support/http';
import { startRedisProxy } from '../support/redis-proxy';
import { freePort } from '../support/sandbox-process';
import { createTestDatabase, startServiceProcess } from '../support/service-process';
import { paidBody, prepareAwaitingOrders } from '../support/stk-orders';

/**
 * The batcher acknowledges a callback only after the COMMIT holding it; a process that dies between that COMMIT
 * and the replies leaves committed settlements that Safaricom (or anyone) may deliver again. The built web role
 * runs as a process of its own; its Redis goes through a proxy the test stalls, so every batch, once committed,
 * waits in its outbox relay before it answers: the moment the test kills it.
 */
jest.setTimeout(180_000);

const N = 64;

test(`when the web process is SIGKILLed after batches committed and before their replies left, then ${N} redelivered callbacks to a restarted process settle every order exactly once`, async () => {
  const created = await createTestDatabase();
  const { db } = created;
  const proxy = await startRedisProxy();
  const prefix = `tcrash${randomBytes(4).toString('hex')}`;
  try {
    await fundPool(db, 10 ** 12, 'crash test');
    const orders = await prepareAwaitingOrders(db, N, { tag: 'crash', firstPhone: 61_000_000 });
    const ids = orders.map((o) => o.id);
    const receipt = (i: number) => `CRASH${String(i).padStart(5, '0')}`;
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    // The web process's connections are named, so the test can wait until Postgres has finished with them.
    const env = { ...baseEnv(), LOG_LEVEL: 'info', ROLE: 'web', PORT: String(port), DATABASE_URL: `${created.url}?application_name=settle-crash-web`, REDIS_URL: proxy.url, QUEUE_PREFIX: prefix };
    const paidCount = async () => Number((await db('orders').whereIn('id', ids).where({ status: 'paid' }).count({ n: '*' }))[0]!.n);

    let web = await startServiceProcess(env);
    proxy.freeze();
    const acked = new Set<number>();
    const sends = orders.map((o, i) => postCallback(url, paidBody(o, receipt(i))).then((r) => void (r.status === 200 && acked.add(i)), () => undefined));
    await waitFor(async () => (await paidCount()) >= 2, 'a batch to commit');
    web.kill('SIGKILL');
    await web.exited;
    await Promise.all(sends);
    // A COMMIT that reached Postgres before the process died still completes: count only once its backends are gone.
    await waitFor(async () => Number((await db.raw(`SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'settle-crash-web'`)).rows[0].n) === 0, 'the dead process\'s backends to end');
    const committed = await paidCount();
    // Acknowledged means committed: no 200 went out for a callback whose settlement was not in the database.
    const paidIds = new Set((await db('orders').whereIn('id', ids).where({ status: 'paid' }).select('id')).map((r) => r.id));
    expect([...acked].filter((i) => !paidIds.has(orders[i]!.id))).toEqual([]);
    // Settled in the database, never acknowledged: exactly what a redelivery must find already done.
    expect(committed - acked.size).toBeGreaterThan(0);

    proxy.thaw();
    web = await startServiceProcess(env);
    const again = await Promise.all(orders.map((o, i) => postCallback(url, paidBody(o, receipt(i)))));
    expect(again.map((a) => a.status)).toEqual(Array(N).fill(200));
    web.kill('SIGTERM');
    await web.exited;

    for (const [i, o] of orders.entries()) {
      expect(await db('orders').where({ id: o.id }).first('status')).toEqual({ status: 'paid' });
      expect(await db('stk_payments').where({ order_id: o.id }).first('mpesa_receipt')).toEqual({ mpesa_receipt: receipt(i) });
      expect(await db('transfers').where({ pending_id: `buy-${o.id}` }).select('status')).toEqual([{ status: 'posted' }]);
      expect(await db('sms_messages').where({ dedupe_key: `buy-receipt-${o.id}` }).count({ n: '*' })).toEqual([{ n: 1 }]);
      const outcomes = (await db('mpesa_callbacks').where({ checkout_request_id: o.checkoutRequestId }).select('outcome')).map((r) => r.outcome).sort();
      // One settlement per order; each copy the killed process had committed came back as a duplicate.
      expect(outcomes.filter((x) => x === 'settled')).toEqual(['settled']);
      expect(outcomes.every((x) => x === 'settled' || x === 'duplicate')).toBe(true);
    }
    const duplicates = Number((await db('mpesa_callbacks').where({ outcome: 'duplicate' }).count({ n: '*' }))[0]!.n);
    expect(duplicates).toBe(committed);
    expect(await checkBooks(db)).toEqual([]);
  } finally {
    await db.destroy();
    await proxy.close();
    await deleteRedisKeys(`${prefix}:*`);
  }
});
