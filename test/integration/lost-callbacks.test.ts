import nock from 'nock';
import { expectBooksBalanced, fundPoolGrams, startTestService, waitFor, type TestService } from '../support/harness';
import { postCallback } from '../support/http';
import { buyUntilPushed } from '../support/flows';
import { msisdnOf, nextPhone } from '../support/phones';
import { mockStkQuery, type CapturedQuery, type QueryAnswer } from '../support/reconcile';
import { mockAtSmsAccepted, stkCallbackBody, type CapturedSms } from '../support/vendors';

jest.setTimeout(90_000);

/**
 * The reconciliation job as it runs in production: a BullMQ job scheduler in the service's worker
 * role, here every 300 ms, asking about payments 1 s without a callback and giving up after 8 s.
 */
describe.each(['redis', 'postgres'] as const)('lost callbacks, reconciled by the scheduled job (queues on %s)', (engine) => {
  let svc: TestService;
  const answers = new Map<string, QueryAnswer>();
  const asked: CapturedQuery[] = [];
  const sms: CapturedSms[] = [];
  beforeAll(async () => {
    svc = await startTestService({
      ...(engine === 'postgres' ? { REDIS_URL: '' } : {}),
      RECONCILE_INTERVAL_MS: '300',
      RECONCILE_AFTER_SECONDS: '1',
      RECONCILE_RETRY_SECONDS: '0',
      RECONCILE_GIVE_UP_SECONDS: '8',
    });
    expect(svc.running.services.backends.kind).toBe(engine);
    await fundPoolGrams(svc.db, 100);
    // Daraja's STK Query, all test long: whatever `answers` says, "being processed" otherwise.
    mockStkQuery((id) => answers.get(id) ?? 'pending', asked, 100_000);
    mockAtSmsAccepted(sms, undefined, 100_000);
  });
  afterAll(async () => {
    await expectBooksBalanced(svc.db);
    nock.cleanAll();
    await svc.close();
  });

  const settledOrders = async (ids: string[]) =>
    Number((await svc.db('orders').whereIn('id', ids).whereIn('status', ['paid', 'failed', 'expired', 'review']).count({ n: '*' }))[0]!.n);

  test('when 20% of 20 callbacks are dropped, then every payment is settled: 16 by their callbacks, 4 by STK Query', async () => {
    const orders: Array<{ id: string; checkoutRequestId: string; dropped: boolean; paid: boolean; gramsUg: number; customerId: number }> = [];
    for (let i = 0; i < 20; i++) {
      const phone = nextPhone();
      const { order, checkoutRequestId } = await buyUntilPushed(svc, { phoneNumber: phone });
      const dropped = i % 5 === 4; // 4 of 20
      const paid = i % 3 !== 0; // a third of the customers cancel
      orders.push({ id: order.id, checkoutRequestId, dropped, paid, gramsUg: order.grams_ug, customerId: order.customer_id });
      if (dropped) {
        // M-Pesa knows the outcome; only its callback is lost.
        answers.set(checkoutRequestId, paid ? { resultCode: 0 } : { resultCode: 1032 });
        continue;
      }
      const body = paid
        ? stkCallbackBody({ checkoutRequestId, resultCode: 0, amount: 500, receipt: `LOST${engine[0]!.toUpperCase()}${String(i).padStart(6, '0')}`, phone: Number(msisdnOf(phone)) })
        : stkCallbackBody({ checkoutRequestId, resultCode: 1032 });
      expect((await postCallback(svc.url, body)).status).toBe(200);
    }
    const ids = orders.map((o) => o.id);
    await waitFor(async () => (await settledOrders(ids)) === 20, 'every order settled', 30_000);

    const rows = await svc.db('orders').join('stk_payments', 'stk_payments.order_id', 'orders.id').whereIn('orders.id', ids).select('orders.id', 'orders.status', 'stk_payments.settled_by');
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const o of orders) {
      expect(byId.get(o.id)).toMatchObject({ status: o.paid ? 'paid' : 'failed', settled_by: o.dropped ? 'query' : 'callback' });
    }
    // Only the payments whose callbacks were lost were asked about, and each settled on its first answer.
    expect(new Set(asked.map((q) => q.checkoutRequestId))).toEqual(new Set(orders.filter((o) => o.dropped).map((o) => o.checkoutRequestId)));
    const credited = await svc.db('transfers').whereIn('pending_id', ids.map((id) => `buy-${id}`)).where({ status: 'posted' }).sum({ ug: 'amount' });
    expect(Number(credited[0]!.ug)).toBe(orders.filter((o) => o.paid).reduce((sum, o) => sum + o.gramsUg, 0));
    await waitFor(async () => Number((await svc.db('sms_messages').whereIn('customer_id', orders.map((o) => o.customerId)).where({ status: 'sent' }).count({ n: '*' }))[0]!.n) === 20, 'one SMS per customer');
  });

  test('when neither a callback nor a final Query answer comes, then the order expires; a success callback after that still gets the customer their gold', async () => {
    const phone = nextPhone();
    const { order, checkoutRequestId } = await buyUntilPushed(svc, { phoneNumber: phone });
    await waitFor(async () => (await svc.db('orders').where({ id: order.id }).first()).status === 'expired', 'the order to expire', 30_000);
    expect(asked.filter((q) => q.checkoutRequestId === checkoutRequestId).length).toBeGreaterThan(1); // asked, with backoff, until the limit
    expect(await svc.db('ops_alerts').where({ order_id: order.id }).first()).toMatchObject({ kind: 'payment_unconfirmed' });

    await postCallback(svc.url, stkCallbackBody({ checkoutRequestId, resultCode: 0, amount: 500, receipt: `LATE${engine[0]!.toUpperCase()}000001`, phone: Number(msisdnOf(phone)) }));

    expect(await svc.db('orders').where({ id: order.id }).first()).toMatchObject({ status: 'paid' });
    expect(await svc.db('transfers').where({ pending_id: `buy-${order.id}-late` }).first()).toMatchObject({ status: 'posted', amount: order.grams_ug });
    await waitFor(() => svc.db('sms_messages').where({ dedupe_key: `buy-receipt-${order.id}`, status: 'sent' }).first(), 'the late receipt');
    expect((await svc.db('sms_messages').where({ customer_id: order.customer_id }).orderBy('id').select('purpose')).map((m) => m.purpose)).toEqual(['buy_expired', 'buy_receipt']);
  });
});
