import { createPostgresBackend, Queue, withBackend } from 'bullmq';
import { Redis } from 'ioredis';
import type { Db } from '../../src/db/knex';
import { baseEnv, deleteRedisKeys, expectBooksBalanced, fundPoolGrams, waitFor } from '../support/harness';
import { dial, postCallback } from '../support/http';
import { startFakeDaraja, type FakeDaraja, type FakePush } from '../support/fake-daraja';
import { nextPhone } from '../support/phones';
import { freePort } from '../support/sandbox-process';
import { createTestDatabase, startServiceProcess, type ServiceProcess } from '../support/service-process';
import { TEST_REDIS_URL } from '../support/test-env';
import { stkCallbackBody } from '../support/vendors';

jest.setTimeout(180_000);

/**
 * The built service as separate web and worker processes, against its own database and Daraja on
 * 127.0.0.1 (a fake whose STK Push answers can be held: a slow Daraja). The worker is SIGKILLed with
 * every push in flight, more orders come in while it is dead, and a new worker is started.
 */
describe.each(['redis', 'postgres'] as const)('a worker killed with SIGKILL mid-push (queues on %s)', (engine) => {
  let fake: FakeDaraja;
  let db: Db;
  let web: ServiceProcess;
  const workers: ServiceProcess[] = [];
  let env: Record<string, string>;
  let webUrl: string;
  let queuePrefix: string;
  let databaseUrl: string;

  beforeAll(async () => {
    fake = await startFakeDaraja();
    const created = await createTestDatabase();
    db = created.db;
    databaseUrl = created.url;
    await fundPoolGrams(db, 10);
    queuePrefix = `kill${Date.now().toString(36)}`;
    env = {
      ...baseEnv(),
      LOG_LEVEL: 'info',
      DATABASE_URL: created.url,
      REDIS_URL: engine === 'redis' ? TEST_REDIS_URL : '',
      QUEUE_PREFIX: queuePrefix,
      MPESA_BASE_URL: fake.url,
      AT_API_URL: fake.url,
      MPESA_HTTP_TIMEOUT_MS: '60000',
      // A dead worker's jobs are taken over once their 2 s lock lapses (30 s in production).
      JOB_LOCK_DURATION_MS: '2000',
      RECONCILE_INTERVAL_MS: '500',
      RECONCILE_AFTER_SECONDS: '8',
      RECONCILE_RETRY_SECONDS: '1',
      RECONCILE_GIVE_UP_SECONDS: '20',
      RECONCILE_MATCH_WINDOW_SECONDS: '600',
    };
    const port = await freePort();
    web = await startServiceProcess({ ...env, ROLE: 'web', PORT: String(port) });
    webUrl = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    for (const p of [web, ...workers]) p?.kill('SIGKILL');
    await Promise.all([web, ...workers].filter(Boolean).map((p) => p.exited));
    await db?.destroy();
    await fake?.close();
    if (engine === 'redis') await deleteRedisKeys(`${queuePrefix}:*`);
  });

  async function buy(phone: string) {
    const { sessionId, last } = await dial(webUrl, ['1', '500', '1'], { phoneNumber: phone });
    if (!last.startsWith('END Request received')) throw new Error(`unexpected reply: ${last}`);
    return db('orders').where('source_key', 'like', `ussd:%:${sessionId}`).first();
  }

  const successFor = (p: FakePush, n: number) =>
    stkCallbackBody({ checkoutRequestId: p.checkoutRequestId, resultCode: 0, amount: p.amount, receipt: `KILL${engine === 'redis' ? 'R' : 'P'}${String(n).padStart(5, '0')}`, phone: Number(p.phone) });

  test('when the worker dies with every push in flight, then no order is pushed twice, no job is lost and every order is paid or expired', async () => {
    fake.holdPushes();
    workers.push(await startServiceProcess({ ...env, ROLE: 'worker' }));
    const firstOrders = [];
    for (let i = 0; i < 6; i++) firstOrders.push(await buy(nextPhone()));
    await waitFor(() => Promise.resolve(fake.pushes.length === 6), 'six pushes held at Daraja', 30_000);
    await waitFor(async () => Number((await db('stk_payments').where({ push_outcome: 'in_flight' }).count({ n: '*' }))[0]!.n) === 6, 'six attempts recorded in flight');

    workers[0]!.kill('SIGKILL');
    expect(await workers[0]!.exited).toBeNull(); // killed by the signal, no graceful anything
    const lateOrders = [];
    for (let i = 0; i < 3; i++) lateOrders.push(await buy(nextPhone()));
    fake.releasePushes(); // Daraja answers now; nobody is listening any more

    workers.push(await startServiceProcess({ ...env, ROLE: 'worker' }));
    await waitFor(() => Promise.resolve(fake.pushes.length === 9), 'the three new orders pushed', 30_000);
    // The six killed jobs are taken over once their locks lapse; each finds its push in flight and stops.
    await waitFor(() => buyJobsCompleted(9), 'every buy job completed', 60_000);

    // The customers pay: callbacks for the new orders (ids we stored) and for four of the killed
    // pushes (ids we never learnt). Two killed pushes never get an answer.
    const byReference = new Map(fake.pushes.map((p) => [p.reference, p]));
    const paidPushes = [...lateOrders, ...firstOrders.slice(0, 4)].map((o) => byReference.get(o.reference)!);
    let n = 0;
    for (const p of paidPushes) {
      fake.markPaid(p.checkoutRequestId);
      expect((await postCallback(webUrl, successFor(p, ++n))).status).toBe(200);
    }
    const all = [...firstOrders, ...lateOrders];
    await waitFor(
      async () => (await db('orders').whereIn('id', all.map((o) => o.id)).whereIn('status', ['paid', 'expired', 'failed', 'review']).count({ n: '*' }))[0]!.n == all.length,
      'every order settled',
      60_000,
    );

    // Exactly one STK Push per order, ever.
    expect(fake.pushes.map((p) => p.reference).sort()).toEqual(all.map((o) => o.reference).sort());
    const statuses = Object.fromEntries(await Promise.all(all.map(async (o) => [o.reference, (await db('orders').where({ id: o.id }).first()).status])));
    for (const o of [...lateOrders, ...firstOrders.slice(0, 4)]) expect(statuses[o.reference]).toBe('paid');
    for (const o of firstOrders.slice(4)) expect(statuses[o.reference]).toBe('expired');
    const payments = await db('stk_payments').whereIn('order_id', all.map((o) => o.id)).select('order_id', 'matched_by', 'settled_by', 'push_attempts');
    const paymentOf = (o: { id: string }) => payments.find((p) => p.order_id === o.id)!;
    for (const o of firstOrders.slice(0, 4)) expect(paymentOf(o)).toMatchObject({ matched_by: 'phone_amount_window', settled_by: 'callback', push_attempts: 1 });
    for (const o of lateOrders) expect(paymentOf(o)).toMatchObject({ matched_by: 'checkout_id', push_attempts: 1 });
    for (const o of firstOrders.slice(4)) expect(paymentOf(o)).toMatchObject({ settled_by: 'expiry', push_attempts: 1 });
    // Each customer told once: seven receipts, two "expired".
    await waitFor(() => Promise.resolve(fake.sms.length >= 9), 'the SMS', 30_000);
    expect(new Set(fake.sms.map((s) => s.to)).size).toBe(fake.sms.length);
    expect(fake.sms.filter((s) => s.message.startsWith('Gold purchase confirmed'))).toHaveLength(7);
    expect(fake.sms.filter((s) => s.message.startsWith('We got no M-Pesa confirmation'))).toHaveLength(2);
    expect(await db('ops_alerts').where({ kind: 'payment_unconfirmed' }).count({ n: '*' })).toEqual([{ n: 2 }]);
    await expectBooksBalanced(db);
  });

  async function buyJobsCompleted(expected: number): Promise<boolean> {
    const redis = engine === 'redis' ? new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 }) : null;
    const queue = redis
      ? new Queue('buy-gold', { connection: redis, prefix: queuePrefix })
      : new (withBackend(createPostgresBackend).Queue)('buy-gold', { connection: { connectionString: databaseUrl, schema: 'bullmq', max: 1, migrate: false }, prefix: queuePrefix });
    try {
      const counts = await queue.getJobCounts('completed', 'failed', 'active', 'waiting', 'delayed');
      return counts.completed === expected && counts.failed === 0 && counts.active === 0;
    } finally {
      await queue.close();
      redis?.disconnect();
    }
  }
});
