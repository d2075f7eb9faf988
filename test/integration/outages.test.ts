import { spawn, type ChildProcess } from 'node:child_process';
import nock from 'nock';
import { Redis } from 'ioredis';
import { createDb } from '../../src/db/knex';
import { reconcileStkPayments } from '../../src/payments/buy/reconcile-stk-payments';
import { expectBooksBalanced, fundPoolGrams, startTestService, waitFor, type TestService } from '../support/harness';
import { newSessionId, postCallback, ussd } from '../support/http';
import { buyUntilPushed, customerGold, orderStatus } from '../support/flows';
import { msisdnOf, nextPhone } from '../support/phones';
import { backdate, mockStkQuery } from '../support/reconcile';
import { freePort } from '../support/sandbox-process';
import { ADMIN_DATABASE_URL } from '../support/test-env';
import { mockAtSmsAccepted, stkCallbackBody, type CapturedSms } from '../support/vendors';

/** A redis-server of the test's own (the shared one must not be stopped), on a free port, nothing persisted. */
class PrivateRedis {
  private child: ChildProcess | null = null;
  constructor(readonly port: number) {}
  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }
  async start() {
    if (this.child && this.child.exitCode === null) return;
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'], { stdio: 'ignore' });
    this.child = child;
    const probe = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    try {
      await waitFor(async () => {
        try {
          if (probe.status !== 'ready') await probe.connect();
          return (await probe.ping()) === 'PONG';
        } catch {
          return false;
        }
      }, 'the private redis-server to answer');
    } finally {
      probe.disconnect();
    }
  }
  async stop() {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    this.child = null;
  }
}

describe('when Redis stops while callbacks arrive', () => {
  let svc: TestService;
  let redis: PrivateRedis;
  beforeAll(async () => {
    redis = new PrivateRedis(await freePort());
    await redis.start();
    svc = await startTestService({ REDIS_URL: redis.url, RECONCILE_INTERVAL_MS: '3600000', OUTBOX_RELAY_INTERVAL_MS: '200' });
    await fundPoolGrams(svc.db, 10);
  });
  afterEach(async () => {
    await expectBooksBalanced(svc.db);
    nock.cleanAll();
  });
  afterAll(async () => {
    await redis.start().catch(() => undefined); // lets the service close its queues cleanly
    await svc.close();
    await redis.stop();
  });

  test('then the settlement still commits in Postgres, and the SMS goes out once Redis is back', async () => {
    const phone = nextPhone();
    const { order, checkoutRequestId } = await buyUntilPushed(svc, { phoneNumber: phone });
    const before = await customerGold(svc, order.customer_id);
    const sms: CapturedSms[] = [];
    mockAtSmsAccepted(sms);

    await redis.stop();
    const ack = await postCallback(svc.url, stkCallbackBody({ checkoutRequestId, resultCode: 0, amount: 500, receipt: 'REDISDOWN1', phone: Number(msisdnOf(phone)) }));

    expect(ack).toMatchObject({ status: 200, json: { ResultCode: 0 } });
    expect(await orderStatus(svc, order.id)).toBe('paid');
    expect((await customerGold(svc, order.customer_id)).credits_posted - before.credits_posted).toBe(order.grams_ug);
    const message = await svc.db('sms_messages').where({ dedupe_key: `buy-receipt-${order.id}` }).first();
    expect(message).toMatchObject({ status: 'queued' });
    // Recorded for the queue, not yet handed to it: the outbox row waits for Redis.
    expect(await svc.db('outbox').where({ job_id: `sms-${message.id}` }).first()).toMatchObject({ relayed_at: null });
    // Meanwhile USSD answers a friendly END rather than an error (its sessions live in Redis).
    const dialled = await ussd(svc.url, { sessionId: newSessionId(), text: '', phoneNumber: nextPhone() });
    expect(dialled).toMatchObject({ status: 200, text: 'END Sorry, the service is busy. Please try again in a few minutes.' });
    expect(sms).toHaveLength(0);

    await redis.start(); // empty: whatever Redis held is gone; the outbox still has the job

    await waitFor(() => svc.db('sms_messages').where({ id: message.id, status: 'sent' }).first(), 'the SMS to go out', 30_000);
    expect(sms).toHaveLength(1);
    expect(sms[0]!.form.get('message')).toMatch(/M-Pesa ref REDISDOWN1/);
    expect(await svc.db('outbox').where({ job_id: `sms-${message.id}` }).whereNotNull('relayed_at').first()).toBeDefined();
  });
});

describe('when Postgres is unreachable', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ RECONCILE_INTERVAL_MS: '3600000', RECONCILE_AFTER_SECONDS: '180' });
    await fundPoolGrams(svc.db, 10);
  });
  afterEach(async () => {
    await expectBooksBalanced(svc.db);
    nock.cleanAll();
  });
  afterAll(() => svc.close());

  async function withDatabaseDown<T>(fn: () => Promise<T>): Promise<T> {
    const name = svc.db.client.database() as string;
    const admin = createDb(ADMIN_DATABASE_URL, { max: 1 });
    try {
      await admin.raw(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
      await admin.raw('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ?', [name]);
      return await fn();
    } finally {
      await admin.raw(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
      await admin.destroy();
    }
  }

  test('then a callback answers 503 and records nothing, and reconciliation settles the payment later', async () => {
    const phone = nextPhone();
    const { order, checkoutRequestId } = await buyUntilPushed(svc, { phoneNumber: phone });
    const body = stkCallbackBody({ checkoutRequestId, resultCode: 0, amount: 500, receipt: 'PGDOWN0001', phone: Number(msisdnOf(phone)) });

    const ack = await withDatabaseDown(() => postCallback(svc.url, body));

    expect(ack).toMatchObject({ status: 503, json: { ResultCode: 1 } });
    expect(await orderStatus(svc, order.id)).toBe('stk_sent');
    expect(await svc.db('mpesa_callbacks').where({ checkout_request_id: checkoutRequestId }).first()).toBeUndefined();

    // Safaricom does not retry. Reconciliation asks, once the callback is RECONCILE_AFTER_SECONDS late.
    mockAtSmsAccepted([]);
    mockStkQuery(new Map([[checkoutRequestId, { resultCode: 0 }]]));
    await backdate(svc.db, order.id, 200);
    expect(await reconcileStkPayments(svc.running.services)).toMatchObject({ queried: 1, settled: 1 });
    expect(await orderStatus(svc, order.id)).toBe('paid');
    expect(await svc.db('stk_payments').where({ order_id: order.id }).first()).toMatchObject({ settled_by: 'query' });
  });

  test('then USSD answers a friendly END, not an error', async () => {
    const res = await withDatabaseDown(() => ussd(svc.url, { sessionId: newSessionId(), text: '', phoneNumber: nextPhone() }));
    expect(res).toMatchObject({ status: 200, text: 'END Sorry, the service is busy. Please try again in a few minutes.' });
    expect(res.contentType).toMatch(/^text\/plain/);
  });
});
