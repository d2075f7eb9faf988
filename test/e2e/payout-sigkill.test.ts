import { randomUUID } from 'node:crypto';
import { loadConfig } from '../../src/config';
import type { Db } from '../../src/db/knex';
import type { Queues } from '../../src/infra/backends';
import { Outbox } from '../../src/infra/outbox';
import { createLogger } from '../../src/lib/logger';
import type { Msisdn } from '../../src/lib/msisdn';
import { microgramsForPayout } from '../../src/lib/units';
import { placeSellOrder } from '../../src/payments/sell/place-sell-order';
import { b2cTestEnv } from '../support/b2c-env';
import { startFakeDarajaB2c, type FakeDarajaB2c } from '../support/fake-daraja-b2c';
import { baseEnv, deleteRedisKeys, expectBooksBalanced, fundPoolGrams, waitFor } from '../support/harness';
import { customerWithGold, SALE_UG, SELL_PRICE } from '../support/sales';
import { createTestDatabase, startServiceProcess, type ServiceProcess } from '../support/service-process';
import { TEST_REDIS_URL } from '../support/test-env';

jest.setTimeout(180_000);

const B2C_ENV = b2cTestEnv();

/**
 * Record before you call, for payouts: the built service's worker is SIGKILLed while its B2C request is
 * held at Daraja (a fake on 127.0.0.1 that took the request: the money may go out). A new worker
 * re-runs the job and Daraja refuses the re-sent request outright. The in-flight marker the first
 * attempt committed says the first one may have been processed, so the gold is NOT returned:
 * Transaction Status is asked and, with no answer, the sale goes to review with an alert.
 */
describe.each(['redis', 'postgres'] as const)('a worker killed with SIGKILL mid-payout (queues on %s)', (engine) => {
  let fake: FakeDarajaB2c;
  let db: Db;
  const workers: ServiceProcess[] = [];
  let env: Record<string, string>;
  let queuePrefix: string;

  beforeAll(async () => {
    fake = await startFakeDarajaB2c();
    const created = await createTestDatabase();
    db = created.db;
    await fundPoolGrams(db, 10);
    queuePrefix = `pkill${Date.now().toString(36)}`;
    env = {
      ...baseEnv(),
      ...B2C_ENV,
      LOG_LEVEL: 'info',
      DATABASE_URL: created.url,
      REDIS_URL: engine === 'redis' ? TEST_REDIS_URL : '',
      QUEUE_PREFIX: queuePrefix,
      MPESA_BASE_URL: fake.url,
      AT_API_URL: fake.url,
      MPESA_HTTP_TIMEOUT_MS: '60000',
      // A dead worker's jobs are taken over once their 2 s lock lapses (30 s in production).
      JOB_LOCK_DURATION_MS: '2000',
      // Status checks 1 s apart, two of them, then the last link decides.
      PAYOUT_RESULT_WAIT_SECONDS: '1',
      PAYOUT_STATUS_CHECKS: '2',
    };
  });

  afterAll(async () => {
    for (const p of workers) p.kill('SIGKILL');
    await Promise.all(workers.map((p) => p.exited));
    await db?.destroy();
    await fake?.close();
    if (engine === 'redis') await deleteRedisKeys(`${queuePrefix}:*`);
  });

  /** A KES 1,000 sale placed in the database; its job is relayed by the worker's outbox sweep. */
  async function sell(msisdn: Msisdn) {
    const customer = await customerWithGold({ db }, msisdn);
    const neverRelays = new Proxy({}, { get: () => ({ add: async () => Promise.reject(new Error('left to the worker sweep')) }) }) as Queues;
    const placed = await placeSellOrder(
      { db, outbox: new Outbox(db, neverRelays, createLogger('silent')), config: { ...loadConfig({ ...env, ROLE: 'worker' }), databaseUrl: env.DATABASE_URL! } },
      { customerId: customer.id, msisdn, amountKes: 1000, priceCentsPerGram: SELL_PRICE, gramsUg: microgramsForPayout(100_000, SELL_PRICE), sourceKey: `test:${randomUUID()}` },
    );
    if (!placed.ok) throw new Error(`refused: ${placed.reason}`);
    return { customer, orderId: placed.orderId, payoutId: (await db('payouts').where({ order_id: placed.orderId }).first('id')).id as string };
  }

  test('when the worker dies with the B2C request in flight and the re-run is refused outright, then the gold is NOT returned: Transaction Status is asked and the sale goes to review', async () => {
    fake.holdPayouts();
    workers.push(await startServiceProcess({ ...env, ROLE: 'worker' }));
    const msisdn = (engine === 'redis' ? '254711500101' : '254711500102') as Msisdn;
    const sale = await sell(msisdn);
    await waitFor(() => Promise.resolve(fake.payouts.length === 1), 'the B2C request held at Daraja', 30_000);
    // Recorded before the request left: committed, so visible to us while Daraja holds it.
    expect(await db('payouts').where({ id: sale.payoutId }).first()).toMatchObject({ status: 'requested', attempts: 1, in_flight_at: expect.any(Date), maybe_sent: false });

    workers[0]!.kill('SIGKILL');
    expect(await workers[0]!.exited).toBeNull(); // killed by the signal, no graceful anything
    fake.releasePayouts(); // Daraja took it (the money may go out); nobody hears the answer
    // The re-sent request is refused with a definite answer.
    fake.answerNext({ status: 400, errorCode: '400.002.02', errorMessage: 'Bad Request - Invalid PartyB' });

    workers.push(await startServiceProcess({ ...env, ROLE: 'worker' }));
    await waitFor(() => Promise.resolve(fake.payouts.length === 2), 'the killed job re-run', 60_000);
    expect(fake.payouts.map((p) => p.originatorConversationId)).toEqual([sale.payoutId, sale.payoutId]);

    const settled = await waitFor(async () => {
      const o = await db('orders').where({ id: sale.orderId }).first();
      return ['review', 'failed', 'paid'].includes(o.status) && o;
    }, 'the sale to be decided', 60_000);
    expect(settled).toMatchObject({ status: 'review', failure_code: 'payout_unconfirmed' });
    expect(fake.statusQueries.filter((id) => id === sale.payoutId)).toHaveLength(2);
    expect(await db('payouts').where({ id: sale.payoutId }).first()).toMatchObject({ status: 'review', attempts: 2, maybe_sent: true, in_flight_at: null });
    // The gold is still held: neither returned to the seller nor taken.
    expect(await db('transfers').where({ pending_id: `sell-${sale.orderId}` }).first()).toBeUndefined();
    expect(await db('accounts').where({ customer_id: sale.customer.id }).first()).toMatchObject({ debits_pending: SALE_UG, debits_posted: 0 });
    expect(await db('ops_alerts').where({ order_id: sale.orderId }).select('kind', 'severity')).toEqual([{ kind: 'payout_unconfirmed', severity: 'error' }]);
    expect(await db('sms_messages').where({ dedupe_key: `sell-failed-${sale.orderId}` }).first()).toBeUndefined();
    expect(fake.sms).toEqual([]);
    await expectBooksBalanced(db);
  });
});
